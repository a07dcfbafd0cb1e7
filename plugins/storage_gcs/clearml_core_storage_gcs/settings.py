"""Reading ``sdk.google.storage``, MLflow's variables and ``credentials_json``; no Google SDK here.

ClearML matches ``sdk.google.storage.credentials`` entries by string prefix on ``bucket/subdir``
and takes the first match. Here (DESIGN §4) an entry matches on path segments (``subdir: team``
never serves ``team-b/x``; ``bucket: data`` never serves ``data-archive``), the most specific
entry wins whatever the list order, and fields an entry leaves unset (``project``,
``credentials_json``) inherit the section's.

Transfer settings, each from clearml.conf when set there, else from MLflow's variable, else the
default: upload / download chunk sizes (multiples of 256 KiB; ``MLFLOW_GCS_UPLOAD_CHUNK_SIZE``,
``MLFLOW_GCS_DOWNLOAD_CHUNK_SIZE``) and the request timeout (``MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT``,
then the deprecated ``MLFLOW_GCS_DEFAULT_TIMEOUT``; ``-1`` means none).
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from clearml_core.credentials.matching import best_match, inherit, join_prefix
from clearml_core.errors import ConfigError
from clearml_core.storage.settings import SettingsCache, home_relative, source_file, text_or_none

if TYPE_CHECKING:
    from clearml_core.config import Config
    from clearml_core.storage.url import StorageURL

log = logging.getLogger("clearml_core.storage.gcs")

SECTION = "sdk.google.storage"
ENTRIES = "sdk.google.storage.credentials"

ENV_CREDENTIALS = "GOOGLE_APPLICATION_CREDENTIALS"
ENV_PROJECT = "GOOGLE_CLOUD_PROJECT"
ENV_EMULATOR = "STORAGE_EMULATOR_HOST"
ENV_UPLOAD_CHUNK = "MLFLOW_GCS_UPLOAD_CHUNK_SIZE"
ENV_DOWNLOAD_CHUNK = "MLFLOW_GCS_DOWNLOAD_CHUNK_SIZE"
ENV_TIMEOUT = "MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT"
ENV_TIMEOUT_DEPRECATED = "MLFLOW_GCS_DEFAULT_TIMEOUT"

CHUNK_MULTIPLE = 256 * 1024
DEFAULT_TIMEOUT = 60.0  # google-cloud-storage's own default
SINGLE_REQUEST_LIMIT = 8 * 1024 * 1024  # google-cloud-storage sends up to 8 MiB in one request


# -- credentials_json ---------------------------------------------------------------------------


@dataclass(frozen=True, repr=False)
class KeyInfo:
    """A ``credentials_json`` value read: where it came from, and the JSON inside."""

    kind: str
    """``file`` (a path to a key file) or ``inline`` (the JSON itself)."""
    path: str | None
    info: Mapping[str, Any]

    @property
    def type(self) -> str:
        return str(self.info.get("type") or "")

    @property
    def principal(self) -> str | None:
        """The service account's e-mail (shown by ``storage resolve``), or the client id."""
        value = self.info.get("client_email") or self.info.get("client_id")
        return str(value) if value else None

    def __repr__(self) -> str:  # never show the key
        return f"KeyInfo(kind={self.kind!r}, path={self.path!r}, type={self.type!r})"


def read_credentials_json(value: Any, where: str) -> KeyInfo:
    """ClearML's rule: a path to a key file when such a file exists, else the JSON text itself.

    Errors name ``where`` and, for a path, the path; inline JSON (a secret) is never shown.
    """
    if isinstance(value, Mapping):
        return KeyInfo("inline", None, dict(value))
    text = str(value).strip()
    if not text.startswith("{"):
        path = Path(text).expanduser()
        if path.is_file():
            try:
                info = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as error:
                raise ConfigError(
                    f"{where}: {home_relative(str(path))} is not a JSON key file ({error})"
                ) from None
            if not isinstance(info, dict):
                raise ConfigError(f"{where}: {home_relative(str(path))} does not hold a JSON object")
            return KeyInfo("file", str(path), info)
    try:
        info = json.loads(text)
    except ValueError:
        if text.startswith("{"):
            raise ConfigError(f"{where} holds text that starts like JSON but does not parse") from None
        raise ConfigError(
            f"{where}: no such file {home_relative(str(Path(text).expanduser()))!r}, and the value is not "
            "JSON either; give the path of a service-account key file or the key's JSON"
        ) from None
    if not isinstance(info, dict):
        raise ConfigError(f"{where} must be a JSON object (a service-account or authorized-user key)")
    return KeyInfo("inline", None, info)


# -- entries ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    """One ``sdk.google.storage.credentials`` entry, unset fields taken from the section."""

    index: int
    bucket: str
    subdir: str
    values: Mapping[str, Any]
    """The entry merged over the section's defaults."""
    own: Mapping[str, Any]
    """What the entry itself sets."""

    @property
    def prefix(self) -> str:
        return join_prefix(self.bucket, self.subdir)

    @property
    def name(self) -> str:
        return f"{ENTRIES}[{self.index}]"

    @property
    def where(self) -> str:
        return f"gs://{self.prefix}"


@dataclass(frozen=True)
class Location:
    url: StorageURL
    bucket: str
    key: str

    @property
    def path(self) -> str:
        return f"{self.bucket}/{self.key}" if self.key else self.bucket


def locate(url: StorageURL) -> Location:
    if isinstance(url, str):
        from clearml_core.storage.url import parse_url

        url = parse_url(url)
    return Location(url, url.bucket or "", url.key)


@dataclass(frozen=True)
class Transfer:
    """Chunk sizes, timeout and retry budget, and where each came from."""

    upload_chunk_size: int | None
    download_chunk_size: int | None
    timeout: float | None
    retry_timeout: float
    pool_connections: int | None
    pool_maxsize: int | None
    sources: Mapping[str, str]


class GCSSettings:
    """``sdk.google.storage`` of one loaded configuration and the environment, parsed once."""

    def __init__(self, config: Config, environ: Mapping[str, str] | None = None) -> None:
        environ = os.environ if environ is None else environ
        section = config.get_dict(SECTION)
        self.defaults: dict[str, Any] = {
            k: v for k, v in section.items() if k in ("project", "credentials_json")
        }
        self.origin = config.origin(SECTION)
        self.entries_origin = config.origin(ENTRIES)
        self.credentials_origin = config.origin(f"{SECTION}.credentials_json")
        self.anonymous = bool(config.get_bool(f"{SECTION}.anonymous", True))
        self.entries: list[Entry] = []
        self.ignored: list[str] = []
        for index, raw in enumerate(config.get_list(ENTRIES)):
            entry = self._entry(index, raw)
            if entry is not None:
                self.entries.append(entry)
        self.transfer = _transfer(config, environ)
        self._keys: dict[str, KeyInfo] = {}
        self._keys_lock = threading.Lock()

    def _entry(self, index: int, raw: Any) -> Entry | None:
        where = f"{source_file(self.entries_origin)}: {ENTRIES}[{index}]"
        if not isinstance(raw, Mapping):
            raise ConfigError(f"{where} must be an object {{ bucket: …, subdir: …, credentials_json: … }}")
        own = {str(k): v for k, v in raw.items()}
        bucket = text_or_none(own.get("bucket")) or ""
        if bucket.lower().startswith(("gs://", "gcs://")):
            bucket = bucket.split("://", 1)[1]
        bucket, _, rest = bucket.strip("/").partition("/")
        subdir = join_prefix(rest, text_or_none(own.get("subdir")))
        if not bucket:
            message = f"{where} names no bucket, so it never applies; add bucket:"
            log.warning(message)
            self.ignored.append(message)
            return None
        return Entry(index, bucket, subdir, inherit(self.defaults, own), own)

    def match(self, location: Location) -> Entry | None:
        return best_match(self.entries, location.path, lambda e: e.prefix, separators=("/",))

    def key_info(self, value: Any, where: str) -> KeyInfo:
        """``credentials_json`` read once per value (a file is read again only after a reload)."""
        cache_key = json.dumps(value, sort_keys=True) if isinstance(value, Mapping) else str(value)
        with self._keys_lock:
            found = self._keys.get(cache_key)
        if found is None:
            found = read_credentials_json(value, where)
            with self._keys_lock:
                self._keys[cache_key] = found
        return found

    def entry_source(self, entry: Entry) -> str:
        return f"{source_file(self.entries_origin)}: {entry.name}"

    def section_source(self) -> str:
        return f"{source_file(self.credentials_origin)}: {SECTION}.credentials_json"

    def project_for(self, entry: Entry | None, environ: Mapping[str, str]) -> str | None:
        values = entry.values if entry is not None else self.defaults
        return text_or_none(values.get("project")) or text_or_none(environ.get(ENV_PROJECT))


def emulator_host(environ: Mapping[str, str] | None = None) -> str | None:
    """``STORAGE_EMULATOR_HOST`` as an endpoint URL; its scheme is required (the SDK needs one)."""
    environ = os.environ if environ is None else environ
    value = text_or_none(environ.get(ENV_EMULATOR))
    if value is None:
        return None
    if "://" not in value:
        raise ConfigError(
            f"{ENV_EMULATOR}={value!r} has no scheme; google-cloud-storage needs one: "
            f"{ENV_EMULATOR}=http://{value}"
        )
    return value.rstrip("/")


def _chunk(
    config: Config, environ: Mapping[str, str], name: str, env: str, sources: dict[str, str]
) -> int | None:
    key = f"{SECTION}.{name}"
    size: int | None
    if config.get(key) is not None:
        where = f"{source_file(config.origin(key))}: {key}"
        size = config.get_int(key)  # sizes such as "8 MiB" work; a bad value is a ConfigError
    elif text_or_none(environ.get(env)):
        where = f"env {env}"
        try:
            size = int(str(environ[env]).strip())
        except ValueError:
            raise ConfigError(
                f"{where} must be a number of bytes (a multiple of 256 KiB), got {environ[env]!r}"
            ) from None
    else:
        return None
    if size is None:
        return None
    if size <= 0 or size % CHUNK_MULTIPLE:
        raise ConfigError(
            f"{where} must be a positive multiple of 256 KiB (262144 bytes), got {size}; "
            f"for example {max(1, round(size / CHUNK_MULTIPLE)) * CHUNK_MULTIPLE}"
        )
    sources[name] = where
    return size


def _timeout(config: Config, environ: Mapping[str, str], sources: dict[str, str]) -> float | None:
    key = f"{SECTION}.timeout"
    candidates: list[tuple[Any, str]] = []
    if config.get(key) is not None:
        candidates.append((config.get(key), f"{source_file(config.origin(key))}: {key}"))
    for env in (ENV_TIMEOUT, ENV_TIMEOUT_DEPRECATED):
        if text_or_none(environ.get(env)):
            candidates.append((environ[env], f"env {env}"))
    if not candidates:
        sources["timeout"] = "default"
        return DEFAULT_TIMEOUT
    value, where = candidates[0]
    if where == f"env {ENV_TIMEOUT_DEPRECATED}":
        log.warning("%s is deprecated; set %s instead", ENV_TIMEOUT_DEPRECATED, ENV_TIMEOUT)
    try:
        seconds = float(str(value).strip())
    except ValueError:
        raise ConfigError(f"{where} must be a number of seconds (-1: none), got {value!r}") from None
    sources["timeout"] = where
    if seconds == -1:
        return None
    if seconds <= 0:
        raise ConfigError(f"{where} must be a number of seconds above 0, or -1 for none; got {value!r}")
    return seconds


def _transfer(config: Config, environ: Mapping[str, str]) -> Transfer:
    sources: dict[str, str] = {}
    upload = _chunk(config, environ, "upload_chunk_size", ENV_UPLOAD_CHUNK, sources)
    download = _chunk(config, environ, "download_chunk_size", ENV_DOWNLOAD_CHUNK, sources)
    timeout = _timeout(config, environ, sources)
    retry = config.get_float(f"{SECTION}.retry_timeout", 120.0)
    retry = 120.0 if retry is None else retry
    if retry < 0:
        raise ConfigError(
            f"{config.origin(SECTION + '.retry_timeout')}: {SECTION}.retry_timeout must be >= 0"
        )

    def pool(name: str) -> int | None:
        value = config.get_int(f"{SECTION}.{name}")
        if value is not None and value < 1:
            raise ConfigError(f"{config.origin(SECTION + '.' + name)}: {SECTION}.{name} must be at least 1")
        return value

    return Transfer(upload, download, timeout, retry, pool("pool_connections"), pool("pool_maxsize"), sources)


_ENV_INPUTS = (
    ENV_UPLOAD_CHUNK,
    ENV_DOWNLOAD_CHUNK,
    ENV_TIMEOUT,
    ENV_TIMEOUT_DEPRECATED,
    ENV_PROJECT,
)
settings_for = SettingsCache(GCSSettings, environ_keys=_ENV_INPUTS).get
"""The parsed GCS settings of a configuration and the current environment (parsed once per both)."""


__all__ = [
    "Entry",
    "GCSSettings",
    "KeyInfo",
    "Location",
    "Transfer",
    "emulator_host",
    "locate",
    "read_credentials_json",
    "settings_for",
]
