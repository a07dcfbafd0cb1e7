"""Reading ``sdk.aws`` and the environment into what an S3 request needs; no boto3 here.

ClearML matches ``sdk.aws.s3.credentials`` entries by string prefix, takes the first match in
list order and silently drops entries without keys. Here (DESIGN §4):

* an entry matches on whole bucket names and path segments (``data`` never serves
  ``data-other``; ``mybucket/team-a`` serves ``mybucket/team-a/x`` only) and on the whole
  ``host[:port]`` (``minio:900`` never serves ``minio:9000``; no port means the scheme's default
  port, 443 or 80 with ``secure: false``);
* the most specific matching entry wins whatever the list order;
* fields an entry leaves unset inherit the section's defaults (``region``, ``verify``, keys …);
* an entry that brings no credentials (no key/secret, profile or chain) is reported with a
  warning; its other settings (endpoint, region, verify) still apply and the credentials come
  from the next resolvers of the chain.

Endpoint-level options (endpoint URL, region, TLS verification, multipart, upload arguments) are
computed here for every URL, whichever resolver answers with the credentials: config beats
environment beats boto3's defaults.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from clearml_core.credentials.matching import best_match, inherit
from clearml_core.errors import ConfigError
from clearml_core.storage.settings import FirstTime, SettingsCache, source_file

if TYPE_CHECKING:
    from clearml_core.config import Config
    from clearml_core.storage.url import StorageURL

log = logging.getLogger("clearml_core.storage.s3")

SECTION = "sdk.aws.s3"
ENTRIES = "sdk.aws.s3.credentials"
BOTO3_SECTION = "sdk.aws.boto3"

# Environment variables, in the order the docs list them.
ENV_KEY = "AWS_ACCESS_KEY_ID"
ENV_SECRET = "AWS_SECRET_ACCESS_KEY"  # noqa: S105  (a variable name)
ENV_TOKEN = "AWS_SESSION_TOKEN"  # noqa: S105
ENV_REGION = "AWS_DEFAULT_REGION"
ENV_REGION_ALT = "AWS_REGION"
ENV_PROFILE = "AWS_PROFILE"
ENV_CA_BUNDLE = "AWS_CA_BUNDLE"
ENV_MLFLOW_ENDPOINT = "MLFLOW_S3_ENDPOINT_URL"
ENV_AWS_ENDPOINTS = ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")
ENV_IGNORE_ENDPOINTS = "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"
ENV_MLFLOW_IGNORE_TLS = "MLFLOW_S3_IGNORE_TLS"
ENV_MLFLOW_EXTRA_ARGS = "MLFLOW_S3_UPLOAD_EXTRA_ARGS"

_TRUE = {"1", "true", "yes", "on", "y"}
_FALSE = {"0", "false", "no", "off", "n", ""}
_PORT = re.compile(r"^(?P<host>\[[^\]]+\]|[^:]+)(?::(?P<port>\d+))?$")


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _text(value: Any) -> str | None:
    return None if _blank(value) else str(value).strip()


def _flag(value: Any, default: bool | None = None) -> bool | None:
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    lowered = str(value).strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False if lowered else default
    return default


def verify_value(value: Any) -> bool | str | None:
    """``verify`` as boto3 takes it: True, False, a CA bundle path, or None for boto3's default."""
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    text = str(value).strip()
    if not text:
        return None
    lowered = text.lower()
    if lowered in _TRUE:
        return True
    if lowered in ("0", "false", "no", "off", "n"):
        return False
    return str(Path(text).expanduser())


def default_port(secure: bool) -> int:
    return 443 if secure else 80


@dataclass(frozen=True)
class Entry:
    """One ``sdk.aws.s3.credentials`` entry, with unset fields taken from the section."""

    index: int
    values: Mapping[str, Any]
    """The entry merged over the section's defaults (what the entry leaves unset is inherited)."""
    own: Mapping[str, Any]
    """What the entry itself sets."""
    host: str | None
    port: int | None
    bucket_path: str
    """``bucket`` or ``bucket/sub/path`` ("" for a host entry that serves every bucket)."""
    secure: bool

    @property
    def name(self) -> str:
        return f"{ENTRIES}[{self.index}]"

    @property
    def has_credentials(self) -> bool:
        v = self.values
        return bool(
            (_text(v.get("key")) and _text(v.get("secret")))
            or _text(v.get("profile"))
            or _flag(v.get("use_credentials_chain"), False)
            or _flag(v.get("anonymous"), False)
        )

    @property
    def where(self) -> str:
        target = f"host {self.endpoint}" if self.host else "bucket"
        if self.bucket_path:
            target = f"{target} bucket {self.bucket_path}" if self.host else f"bucket {self.bucket_path}"
        return target

    @property
    def endpoint(self) -> str | None:
        if not self.host:
            return None
        return f"{self.host}:{self.port}" if self.port is not None else self.host

    def serves_host(self, host: str | None, port: int | None) -> bool:
        """Whether this entry is for ``host:port`` (ports compared after applying the default)."""
        if self.host is None or host is None or host.lower() != self.host:
            return False
        fallback = default_port(self.secure)
        return (port or fallback) == (self.port or fallback)


@dataclass(frozen=True)
class Location:
    """Where an ``s3://`` URL points: the endpoint (None for AWS), the bucket and the key."""

    url: StorageURL
    bucket: str
    key: str
    host: str | None = None
    port: int | None = None

    @property
    def path(self) -> str:
        """``bucket/key``, what bucket entries match on path segments."""
        return f"{self.bucket}/{self.key}" if self.key else self.bucket


@dataclass(frozen=True)
class Boto3Settings:
    """``sdk.aws.boto3``: client and transfer tuning."""

    pool_connections: int = 512
    max_multipart_concurrency: int = 16
    multipart_threshold: int = 8 * 1024 * 1024
    multipart_chunksize: int = 8 * 1024 * 1024
    connect_timeout: float = 60
    read_timeout: float = 60
    signature_version: str | None = None
    addressing_style: str = "auto"
    max_attempts: int = 3
    retry_mode: str = "standard"
    s3_options: tuple[tuple[str, str], ...] = ()
    """``sdk.aws.boto3.s3`` as (name, JSON value) pairs."""


@dataclass(frozen=True)
class Options:
    """Everything about an S3 target except the credentials: what the client and uploads use."""

    endpoint_url: str | None
    region: str | None
    verify: bool | str | None
    multipart: bool
    extra_args: Mapping[str, Any] = field(default_factory=dict)
    endpoint_source: str | None = None

    @property
    def secure(self) -> bool:
        return not (self.endpoint_url or "").lower().startswith("http://")


def _parse_host(raw: str, where: str) -> tuple[str, int | None, bool | None]:
    """``minio:9000`` / ``http://minio:9000`` → (host, port, secure-from-scheme)."""
    text = raw.strip()
    secure: bool | None = None
    if "://" in text:
        parts = urlsplit(text)
        secure = parts.scheme.lower() != "http"
        text = parts.netloc
    text = text.strip("/")
    match = _PORT.match(text)
    if not match:
        raise ConfigError(f"{where}: host {raw!r} is not host[:port]")
    host = match.group("host").strip("[]").lower()
    port = int(match.group("port")) if match.group("port") else None
    if port is not None and not 0 < port < 65536:
        raise ConfigError(f"{where}: host {raw!r} has an invalid port")
    return host, port, secure


class S3Settings:
    """``sdk.aws.s3`` and ``sdk.aws.boto3`` of one loaded configuration, parsed once."""

    def __init__(self, config: Config) -> None:
        section = config.get_dict(SECTION)
        self.defaults: dict[str, Any] = {k: v for k, v in section.items() if k != "credentials"}
        self.origin = config.origin(SECTION)
        self.entries_origin = config.origin(ENTRIES)
        self.origins = {
            name: config.origin(f"{SECTION}.{name}")
            for name in ("key", "secret", "token", "profile", "use_credentials_chain", "anonymous")
        }
        raw_entries = config.get_list(ENTRIES)
        self.entries: list[Entry] = []
        self.ignored: list[str] = []
        for index, raw in enumerate(raw_entries):
            entry = self._entry(index, raw)
            if entry is not None:
                self.entries.append(entry)
        self.boto3 = _boto3_settings(config)
        self._first_warning = FirstTime()

    # -- entries -------------------------------------------------------------------------------
    def _entry(self, index: int, raw: Any) -> Entry | None:
        where = f"{source_file(self.entries_origin)}: {ENTRIES}[{index}]"
        if not isinstance(raw, Mapping):
            raise ConfigError(f"{where} must be an object {{ bucket: …, key: …, secret: … }}, got {raw!r}")
        own = {str(k): v for k, v in raw.items()}
        bucket = _text(own.get("bucket")) or ""
        if bucket.lower().startswith("s3://"):
            bucket = bucket[5:]
        bucket = "/".join(part for part in bucket.split("/") if part)
        host_text = _text(own.get("host"))
        host = port = None
        scheme_secure: bool | None = None
        if host_text:
            host, port, scheme_secure = _parse_host(host_text, where)
        if not bucket and not host:
            message = f"{where} names neither a bucket nor a host, so it never applies; add bucket: or host:"
            log.warning(message)
            self.ignored.append(message)
            return None
        values = inherit(self.defaults, own)
        secure = _flag(own.get("secure"), scheme_secure if scheme_secure is not None else True)
        return Entry(index, values, own, host, port, bucket, bool(secure))

    def warn_unusable(self, entry: Entry) -> None:
        """Say once that ``entry`` brings no credentials (ClearML would drop it without a word)."""
        if not self._first_warning(entry.index):
            return
        log.warning(
            "%s: %s (%s) has no key/secret, profile or use_credentials_chain, and %s has none to "
            "inherit; its other settings apply, its credentials come from the environment or "
            "boto3's chain. Add key and secret (or profile, use_credentials_chain: true, or anonymous: true for a "
            "public bucket) to use it.",
            source_file(self.entries_origin),
            entry.name,
            entry.where,
            SECTION,
        )

    # -- locating and matching -----------------------------------------------------------------
    def locate(self, url: StorageURL) -> Location:
        """The endpoint, bucket and key of ``url``.

        ``s3://minio.example.com/bucket/key`` parses as the bucket ``minio.example.com`` (a dotted
        name is a valid bucket name); when an entry names that host, the URL is read as a host URL.
        """
        if isinstance(url, str):
            from clearml_core.storage.url import parse_url

            url = parse_url(url)
        bucket = url.bucket or ""
        if url.host is None and any(
            e.host == bucket.lower() and e.serves_host(e.host, None) for e in self.entries
        ):
            head, _, rest = url.key.partition("/")
            if head:
                return Location(url, head, rest, bucket.lower(), None)
        return Location(url, bucket, url.key, url.host, url.port)

    def match(self, location: Location) -> Entry | None:
        """The most specific entry for ``location``; None when none matches."""
        if location.host is not None:
            candidates = [e for e in self.entries if e.serves_host(location.host, location.port)]
        else:
            candidates = [e for e in self.entries if e.host is None]
        return best_match(candidates, location.path, lambda e: e.bucket_path, separators=("/",))

    # -- options -------------------------------------------------------------------------------
    def options(self, location: Location, entry: Entry | None, environ: Mapping[str, str]) -> Options:
        values: Mapping[str, Any] = entry.values if entry is not None else self.defaults
        endpoint_url, endpoint_source = self._endpoint(location, entry, environ)
        region = (
            _text(values.get("region"))
            or _text(environ.get(ENV_REGION))
            or _text(environ.get(ENV_REGION_ALT))
        )
        verify = verify_value(values.get("verify"))
        if verify is None and _flag(environ.get(ENV_MLFLOW_IGNORE_TLS), False):
            verify = False
        if verify is None and _text(environ.get(ENV_CA_BUNDLE)):
            verify = str(Path(str(environ[ENV_CA_BUNDLE]).strip()).expanduser())
        multipart = _flag(values.get("multipart"), True)
        extra_args: dict[str, Any] = {}
        env_extra = _text(environ.get(ENV_MLFLOW_EXTRA_ARGS))
        if env_extra:
            try:
                parsed = json.loads(env_extra)
            except ValueError as error:
                raise ConfigError(f"{ENV_MLFLOW_EXTRA_ARGS} is not JSON: {error}") from None
            if not isinstance(parsed, dict):
                raise ConfigError(f"{ENV_MLFLOW_EXTRA_ARGS} must be a JSON object, got {env_extra!r}")
            extra_args.update(parsed)
        for raw in (self.defaults.get("extra_args"), entry.own.get("extra_args") if entry else None):
            if isinstance(raw, Mapping):
                extra_args.update(raw)
        acl = _text(values.get("acl"))
        if acl:
            extra_args["ACL"] = acl
        return Options(endpoint_url, region, verify, bool(multipart), extra_args, endpoint_source)

    def _endpoint(
        self, location: Location, entry: Entry | None, environ: Mapping[str, str]
    ) -> tuple[str | None, str | None]:
        mlflow = _text(environ.get(ENV_MLFLOW_ENDPOINT))
        if location.host is None:
            if mlflow:
                return mlflow.rstrip("/"), f"env {ENV_MLFLOW_ENDPOINT}"
            # botocore's own variables, in its order; named here so `storage resolve` shows them
            if not _flag(environ.get(ENV_IGNORE_ENDPOINTS), False):
                for name in ENV_AWS_ENDPOINTS:
                    if value := _text(environ.get(name)):
                        return value.rstrip("/"), f"env {name}"
            return None, None
        host = f"[{location.host}]" if ":" in location.host else location.host
        netloc = f"{host}:{location.port}" if location.port is not None else host
        if entry is not None and entry.host is not None:
            scheme = "https" if entry.secure else "http"
            return f"{scheme}://{netloc}", entry.name
        if mlflow:
            parts = urlsplit(mlflow)
            if parts.netloc.lower() == netloc.lower():
                return f"{parts.scheme or 'https'}://{netloc}", f"env {ENV_MLFLOW_ENDPOINT}"
        return f"https://{netloc}", "the URL"

    # -- where things come from ----------------------------------------------------------------
    def entry_source(self, entry: Entry) -> str:
        return f"{source_file(self.entries_origin)}: {entry.name}"

    def section_source(self, key: str) -> str:
        """``~/clearml.conf: sdk.aws.s3.key`` — where the section's ``key`` (or another field) was set."""
        return f"{source_file(self.origins.get(key, self.origin))}: {SECTION}.{key}"


def _boto3_settings(config: Config) -> Boto3Settings:
    base = Boto3Settings()

    def integer(name: str, default: int) -> int:
        value = config.get_int(f"{BOTO3_SECTION}.{name}", default)
        return default if value is None else value

    def number(name: str, default: float) -> float:
        value = config.get_float(f"{BOTO3_SECTION}.{name}", default)
        return default if value is None else value

    settings = Boto3Settings(
        pool_connections=max(1, integer("pool_connections", base.pool_connections)),
        max_multipart_concurrency=max(
            1, integer("max_multipart_concurrency", base.max_multipart_concurrency)
        ),
        multipart_threshold=max(5 * 1024 * 1024, integer("multipart_threshold", base.multipart_threshold)),
        multipart_chunksize=max(5 * 1024 * 1024, integer("multipart_chunksize", base.multipart_chunksize)),
        connect_timeout=number("connect_timeout", base.connect_timeout),
        read_timeout=number("read_timeout", base.read_timeout),
        signature_version=_text(config.get(f"{BOTO3_SECTION}.signature_version")),
        addressing_style=_text(config.get(f"{BOTO3_SECTION}.addressing_style")) or base.addressing_style,
        max_attempts=max(1, integer("max_attempts", base.max_attempts)),
        retry_mode=_text(config.get(f"{BOTO3_SECTION}.retry_mode")) or base.retry_mode,
        s3_options=tuple(  # JSON text: nested values stay hashable for the client cache key
            sorted(
                (str(k), json.dumps(v, sort_keys=True))
                for k, v in config.get_dict(f"{BOTO3_SECTION}.s3").items()
            )
        ),
    )
    if settings.addressing_style not in ("auto", "virtual", "path"):
        raise ConfigError(
            f"{config.origin(BOTO3_SECTION + '.addressing_style')}: {BOTO3_SECTION}.addressing_style "
            f"must be auto, virtual or path, got {settings.addressing_style!r}"
        )
    return settings


settings_for = SettingsCache(S3Settings).get
"""The parsed S3 settings of a configuration (parsed once per loaded configuration)."""


__all__ = [
    "Boto3Settings",
    "Entry",
    "Location",
    "Options",
    "S3Settings",
    "settings_for",
    "source_file",
    "verify_value",
]
