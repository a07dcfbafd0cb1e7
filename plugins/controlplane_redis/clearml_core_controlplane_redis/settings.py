"""Where the Redis control plane is and how to talk to it: the URL, the credentials, ``agent.redis``.

``redis://[USER[:PASSWORD]@]HOST[:PORT][/DB][?prefix=NAME]`` (``rediss://`` for TLS). Every key the
plane writes starts with ``NAME:`` (default ``clearml-core``), so two deployments, or clearml-core
and another program, can share one Redis. A URL without a password takes it from
``agent.redis.password`` (and the user from ``agent.redis.username``), or from the configured
``agent.control_plane`` when that names the same server: the plane's own :attr:`RedisTarget.url`
never carries the password, so it can be logged, written to a run record or handed to another
process without showing it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, quote, unquote, urlsplit

from clearml_core.config.redact import mask_url, redactor
from clearml_core.controlplane import ControlPlaneError

if TYPE_CHECKING:
    from clearml_core.config import Config

SCHEMES = ("redis", "rediss")
DEFAULT_PORT = 6379
DEFAULT_PREFIX = "clearml-core"
_PREFIX = re.compile(r"^[A-Za-z0-9_.:{}-]+$")
_KNOWN_PARAMETERS = ("prefix",)
_SHAPE = "redis://[USER:PASSWORD@]HOST:6379/0[?prefix=NAME] (rediss:// for TLS)"


@dataclass(frozen=True)
class RedisTarget:
    """One Redis control plane: server, database, key prefix and credentials."""

    scheme: str
    host: str
    port: int
    db: int
    prefix: str = DEFAULT_PREFIX
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    @property
    def tls(self) -> bool:
        return self.scheme == "rediss"

    @property
    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def url(self) -> str:
        """The URL without the password: opens the same store where the password is configured."""
        user = f"{quote(self.username, safe='')}@" if self.username else ""
        query = "" if self.prefix == DEFAULT_PREFIX else f"?prefix={quote(self.prefix, safe=':{}')}"
        return f"{self.scheme}://{user}{self.address}/{self.db}{query}"

    def same_store(self, other: RedisTarget) -> bool:
        return (self.scheme, self.host, self.port, self.db) == (
            other.scheme,
            other.host,
            other.port,
            other.db,
        )

    def with_credentials(self, username: str | None, password: str | None) -> RedisTarget:
        return RedisTarget(self.scheme, self.host, self.port, self.db, self.prefix, username, password)


def parse_url(url: str) -> RedisTarget:
    """A :class:`RedisTarget` from a ``redis://`` / ``rediss://`` URL, or a clear error."""
    shown = mask_url(url)
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as error:
        raise ControlPlaneError(
            f"control-plane URL {shown!r} is not valid ({error}); write {_SHAPE}"
        ) from None
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise ControlPlaneError(f"{shown!r} is not a redis:// or rediss:// URL; write {_SHAPE}")
    if not parts.hostname:
        raise ControlPlaneError(f"control-plane URL {shown!r} names no host; write {_SHAPE}")
    path = parts.path.strip("/")
    if path and not path.isdigit():
        raise ControlPlaneError(
            f"control-plane URL {shown!r}: the database after the host must be a number (/0, /1, …), "
            f"not {path!r}"
        )
    try:
        query = parse_qs(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query))
    except ValueError:
        raise ControlPlaneError(
            f"control-plane URL {shown!r}: cannot read its parameters {parts.query!r}"
        ) from None
    unknown = sorted(set(query) - set(_KNOWN_PARAMETERS))
    if unknown:
        raise ControlPlaneError(
            f"control-plane URL {shown!r}: unknown parameter {', '.join(unknown)}; the Redis control "
            f"plane takes {', '.join(_KNOWN_PARAMETERS)}"
        )
    prefix = query.get("prefix", [DEFAULT_PREFIX])[-1]
    if not _PREFIX.match(prefix):
        raise ControlPlaneError(
            f"control-plane URL {shown!r}: the key prefix {prefix!r} must be letters, digits and _ . : - "
            "(e.g. ?prefix=team-a)"
        )
    password = unquote(parts.password) if parts.password is not None else None
    if password:
        redactor.add(password)
    return RedisTarget(
        scheme=scheme,
        host=parts.hostname,
        port=port or DEFAULT_PORT,
        db=int(path or 0),
        prefix=prefix,
        username=unquote(parts.username) if parts.username else None,
        password=password or None,
    )


@dataclass(frozen=True)
class RedisSettings:
    """``agent.redis`` and the watchdog threshold, as the plane uses them."""

    username: str = ""
    password: str = field(default="", repr=False)
    ca_certs: str = ""
    certfile: str = ""
    keyfile: str = ""
    verify: bool = True
    connect_timeout_sec: float = 5.0
    socket_timeout_sec: float = 30.0
    max_log_lines: int = 100_000
    buffer_max_lines: int = 100_000
    flush_timeout_sec: float = 30.0
    worker_ttl_sec: float = 2 * 7200.0

    @classmethod
    def from_config(cls, config: Config) -> RedisSettings:
        threshold = config.get_float("agent.watchdog.threshold_sec", 7200.0) or 7200.0
        return cls(
            username=config.get_str("agent.redis.username", "") or "",
            password=config.get_str("agent.redis.password", "") or "",
            ca_certs=config.get_str("agent.redis.tls.ca_certs", "") or "",
            certfile=config.get_str("agent.redis.tls.certfile", "") or "",
            keyfile=config.get_str("agent.redis.tls.keyfile", "") or "",
            verify=config.get_bool("agent.redis.tls.verify", True),
            connect_timeout_sec=_positive(config, "agent.redis.connect_timeout_sec", 5.0),
            socket_timeout_sec=_positive(config, "agent.redis.socket_timeout_sec", 30.0),
            max_log_lines=int(_positive(config, "agent.redis.max_log_lines", 100_000)),
            buffer_max_lines=int(_positive(config, "agent.redis.buffer_max_lines", 100_000)),
            flush_timeout_sec=max(0.0, config.get_float("agent.redis.flush_timeout_sec", 30.0) or 0.0),
            worker_ttl_sec=max(2 * threshold, 60.0),
        )


def _positive(config: Config, key: str, default: float) -> float:
    value = config.get_float(key, default)
    if value is None or value <= 0:
        raise ControlPlaneError(f"{config.origin(key)}: {key} must be a positive number, not {value!r}")
    return value


def resolve_credentials(target: RedisTarget, config: Config, settings: RedisSettings) -> RedisTarget:
    """The target with its credentials: the URL's own, else the configured control plane's when it
    names the same server, else ``agent.redis.username`` / ``agent.redis.password``."""
    if target.password:
        return target
    from clearml_core.controlplane import control_plane_url

    configured = control_plane_url(config)
    if configured.partition("://")[0].lower() in SCHEMES:
        try:
            other = parse_url(configured)
        except ControlPlaneError:
            other = None
        if other is not None and other.password and other.same_store(target):
            return target.with_credentials(target.username or other.username, other.password)
    if settings.password:
        redactor.add(settings.password)
        return target.with_credentials(target.username or settings.username or None, settings.password)
    return target.with_credentials(target.username or settings.username or None, None)


__all__ = [
    "DEFAULT_PORT",
    "DEFAULT_PREFIX",
    "SCHEMES",
    "RedisSettings",
    "RedisTarget",
    "parse_url",
    "resolve_credentials",
]
