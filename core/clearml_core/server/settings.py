"""The server's settings, typed and checked once when it starts (:meth:`ServerSettings.from_config`).

Everything the server reads from its configuration (:mod:`.config`) is here, so a bad value stops
the server before it listens, with the key and where it was set.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from clearml_core.config import Config
from clearml_core.errors import ConfigError
from clearml_core.server.fixed_users import FixedUser, load_fixed_users

API_VERSION = "2.23"
"""The ClearML REST API version this server speaks (the schemas of clearml's ``services/v2_23``)."""
SERVER_VERSION = "1.9.0"
"""The ClearML server release that speaks :data:`API_VERSION`; clients compare against it."""
WAIT_FOR_TASKS = "queues.wait_for_tasks"
"""clearml-core's long poll of queues (:mod:`clearml_core.server.services.queues`), an extension of
ClearML's API that ClearML server does not have."""


@dataclass(frozen=True)
class Listen:
    ip: str
    port: int

    @classmethod
    def from_config(cls, config: Config, prefix: str, default_port: int) -> Listen:
        port = config.get_int(f"{prefix}.port", default_port)
        if port is None or not 0 <= port <= 65535:
            raise ConfigError(
                f"{config.origin(prefix + '.port')}: {prefix}.port must be a port number, got {port}"
            )
        return cls(config.get_str(f"{prefix}.ip", "127.0.0.1") or "127.0.0.1", port)


@dataclass(frozen=True)
class CookieSettings:
    """The session cookie ``auth.login`` sets for browsers (``apiserver.auth.cookies``)."""

    name: str = "clearml_token_basic"
    httponly: bool = True
    secure: bool = False
    domain: str | None = None
    max_age: int | None = 99999999999

    def header(self, value: str) -> str:
        """A ``Set-Cookie`` value; an empty ``value`` clears the cookie."""
        parts = [f"{self.name}={value}", "Path=/"]
        if not value:
            parts.append("Max-Age=0")
        elif self.max_age is not None:
            parts.append(f"Max-Age={self.max_age}")
        if self.domain:
            parts.append(f"Domain={self.domain}")
        if self.httponly:
            parts.append("HttpOnly")
        if self.secure:
            parts.append("Secure")
        parts.append("SameSite=Lax")
        return "; ".join(parts)


@dataclass(frozen=True)
class ServerSettings:
    """Everything the API, file and web servers read from their configuration."""

    api: Listen = Listen("127.0.0.1", 8008)
    files: Listen = Listen("127.0.0.1", 8081)
    web: Listen = Listen("127.0.0.1", 8080)
    company_id: str = "d1bd92a3b039400cbafc60a7a5b1e52b"
    company_name: str = "clearml"
    check_max_version: bool = False
    return_stack: bool = False
    max_request_bytes: int = 32 * 1024 * 1024
    token_expiration_sec: int = 2592000
    token_max_expiration_sec: int = 31536000
    cookie: CookieSettings = CookieSettings()
    fixed_users_enabled: bool = False
    pass_hashed: bool = False
    fixed_users: tuple[FixedUser, ...] = ()
    login_max_failures: int = 10
    login_window_sec: float = 60.0
    login_lockout_sec: float = 300.0
    token_secret: str = field(default="", repr=False)
    watchdog_enabled: bool = True
    watchdog_threshold_sec: float = 7200.0
    watchdog_interval_sec: float = 900.0
    files_no_cache: bool = False
    files_cache_timeout_sec: int = 300
    max_upload_bytes: int | None = None
    files_allow_batch_delete: bool = False
    files_auth_enabled: bool = False
    files_cookie_names: tuple[str, ...] = ("clearml_token_basic",)
    logging: dict[str, Any] | None = None
    wait_for_tasks: bool = True

    @property
    def extensions(self) -> tuple[str, ...]:
        """The calls beyond ClearML's API that this server offers, announced in ``auth.login``'s
        reply: clearml-core's clients use one only where it is announced, so they never send it to
        a ClearML server (which would answer 404)."""
        return (WAIT_FOR_TASKS,) if self.wait_for_tasks else ()

    @property
    def files_need_token(self) -> bool:
        """With fixed users nothing is served without credentials, the file server included."""
        return self.files_auth_enabled or self.fixed_users_enabled

    @classmethod
    def from_config(cls, config: Config) -> ServerSettings:
        company = config.get_str("apiserver.default_company", cls.company_id) or cls.company_id
        hashed = config.get_bool("apiserver.auth.fixed_users.pass_hashed", False)
        enabled = config.get_bool("apiserver.auth.fixed_users.enabled", False)
        users = load_fixed_users(
            config.get_list("apiserver.auth.fixed_users.users"),
            hashed=hashed,
            company=company,
            origin=config.origin("apiserver.auth.fixed_users.users"),
        )
        if enabled and not users:
            raise ConfigError(
                f"{config.origin('apiserver.auth.fixed_users.enabled')}: apiserver.auth.fixed_users is "
                "enabled but lists no users; add them to apiserver.auth.fixed_users.users"
            )
        max_mb = config.get_float("apiserver.max_request_size_mb", 32.0) or 32.0
        upload_mb = config.get_float("fileserver.upload.max_upload_size_mb")
        logging_tree = config.get("logging")
        return cls(
            api=Listen.from_config(config, "apiserver.listen", 8008),
            files=Listen.from_config(config, "fileserver.listen", 8081),
            web=Listen.from_config(config, "webserver.listen", 8080),
            company_id=company,
            company_name=config.get_str("apiserver.default_company_name", "clearml") or "clearml",
            check_max_version=config.get_bool("apiserver.version.check_max_version", False),
            return_stack=config.get_bool("apiserver.return_stack", False),
            max_request_bytes=int(max_mb * 1024 * 1024),
            token_expiration_sec=config.get_int("apiserver.auth.default_expiration_sec", 2592000) or 2592000,
            token_max_expiration_sec=config.get_int("apiserver.auth.max_expiration_sec", 31536000)
            or 31536000,
            cookie=CookieSettings(
                name=config.get_str("apiserver.auth.session_auth_cookie_name", "clearml_token_basic")
                or "clearml_token_basic",
                httponly=config.get_bool("apiserver.auth.cookies.httponly", True),
                secure=config.get_bool("apiserver.auth.cookies.secure", False),
                domain=config.get_str("apiserver.auth.cookies.domain") or None,
                max_age=config.get_int("apiserver.auth.cookies.max_age", 99999999999),
            ),
            fixed_users_enabled=enabled,
            pass_hashed=hashed,
            fixed_users=users,
            login_max_failures=config.get_int("apiserver.auth.login_rate_limit.max_failures", 10) or 10,
            login_window_sec=config.get_float("apiserver.auth.login_rate_limit.window_sec", 60.0) or 60.0,
            login_lockout_sec=config.get_float("apiserver.auth.login_rate_limit.lockout_sec", 300.0) or 300.0,
            token_secret=config.get_str("secure.auth.token_secret", "") or "",
            watchdog_enabled=config.get_bool("services.tasks.non_responsive_tasks_watchdog.enabled", True),
            watchdog_threshold_sec=config.get_float(
                "services.tasks.non_responsive_tasks_watchdog.threshold_sec", 7200.0
            )
            or 7200.0,
            watchdog_interval_sec=config.get_float(
                "services.tasks.non_responsive_tasks_watchdog.watch_interval_sec", 900.0
            )
            or 900.0,
            files_no_cache=config.get_bool("fileserver.download.disable_browser_caching", False),
            files_cache_timeout_sec=config.get_int("fileserver.download.cache_timeout_sec", 300) or 0,
            max_upload_bytes=int(upload_mb * 1024 * 1024) if upload_mb else None,
            files_allow_batch_delete=config.get_bool("fileserver.delete.allow_batch", False),
            files_auth_enabled=config.get_bool("fileserver.auth.enabled", False),
            files_cookie_names=tuple(str(name) for name in config.get_list("fileserver.auth.cookie_names")),
            logging=logging_tree if isinstance(logging_tree, dict) and logging_tree else None,
            wait_for_tasks=config.get_bool("apiserver.clearml_core.wait_for_tasks", True),
        )


__all__ = ["API_VERSION", "SERVER_VERSION", "WAIT_FOR_TASKS", "CookieSettings", "Listen", "ServerSettings"]
