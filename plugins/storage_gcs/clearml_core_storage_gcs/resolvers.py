"""The credential resolvers of ``gs://`` URLs.

In chain order: ``STORAGE_EMULATOR_HOST`` (50; an emulator takes anonymous requests only),
clearml.conf (100), ``GOOGLE_APPLICATION_CREDENTIALS`` (200), application default credentials
(300), anonymous access for public buckets (900). Each answers with
:class:`~clearml_core.credentials.Credentials` whose ``values`` hold ``auth`` — ``file``,
``inline``, ``adc`` or ``anonymous`` — and what the driver needs to build the Google credentials
(the key file's path, or the key's JSON under ``credential``, which is masked and scrubbed from
anything printed). A resolver that has nothing says why (``describe_miss(url, config)``).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from clearml_core.credentials.chain import Credentials
from clearml_core.credentials.resolvers import ConfigEntryResolver, ConfigLookup, ExplainingResolver, Misses
from clearml_core.errors import ConfigError
from clearml_core.storage.settings import text_or_none
from clearml_core_storage_gcs.settings import (
    ENTRIES,
    ENV_CREDENTIALS,
    ENV_EMULATOR,
    SECTION,
    Entry,
    GCSSettings,
    KeyInfo,
    emulator_host,
    home_relative,
    locate,
    read_credentials_json,
    settings_for,
)

if TYPE_CHECKING:
    from clearml_core.config import Config

SCOPES = ("https://www.googleapis.com/auth/devstorage.full_control",)
_SECRET_FIELDS = ("private_key", "client_secret", "refresh_token")


def key_values(key: KeyInfo, raw: Any) -> dict[str, Any]:
    """Credentials values for a ``credentials_json`` key (never printed: the JSON is ``credential``)."""
    values: dict[str, Any] = {"auth": key.kind, "key_type": key.type or None, "principal": key.principal}
    if key.kind == "file":
        values["credentials_file"] = key.path
    else:
        values["credential"] = raw if isinstance(raw, str) else json.dumps(dict(key.info))
        for name in _SECRET_FIELDS:  # registered with the redactor by Credentials itself
            if key.info.get(name):
                values[name] = str(key.info[name])
    return values


class EmulatorResolver(ExplainingResolver):
    """``STORAGE_EMULATOR_HOST``: the emulator bypasses auth only for anonymous requests."""

    def find(self, url: Any, config: Config, misses: Misses) -> Credentials | None:
        host = emulator_host()
        if host is None:
            misses.note(f"{ENV_EMULATOR} is not set")
            return None
        return Credentials({"auth": "anonymous", "emulator": host}, f"env {ENV_EMULATOR}")


def _has_key(values: Mapping[str, Any]) -> bool:
    raw = values.get("credentials_json")
    return bool(text_or_none(raw)) or isinstance(raw, Mapping)


_Found = ConfigLookup[GCSSettings, Entry]


class ConfigResolver(ConfigEntryResolver[Entry, _Found]):
    """``sdk.google.storage.credentials`` (the most specific bucket/subdir entry), then the section."""

    entries = ENTRIES
    section = SECTION
    wanted = "credentials_json"

    def lookup(self, url: Any, config: Config) -> _Found:
        settings = settings_for(config)
        location = locate(url)
        entry = settings.match(location)
        return ConfigLookup(
            settings, f"gs://{location.path}", entry, settings.entry_source(entry) if entry else ""
        )

    def from_entry(self, entry: Entry, found: _Found) -> Credentials | None:
        if not _has_key(entry.values):
            return None
        raw = entry.values["credentials_json"]
        key = found.settings.key_info(raw, found.entry_source + ".credentials_json")
        source = found.entry_source
        if not _has_key(entry.own):
            source += f" (with {SECTION}.credentials_json)"
        return Credentials(key_values(key, raw), source)

    def from_section(self, found: _Found) -> Credentials | None:
        settings = found.settings
        if not _has_key(settings.defaults):
            return None
        raw = settings.defaults["credentials_json"]
        key = settings.key_info(raw, settings.section_source())
        return Credentials(key_values(key, raw), settings.section_source())


class EnvironmentResolver(ExplainingResolver):
    """``GOOGLE_APPLICATION_CREDENTIALS``: a key file (service account, authorized user, external account)."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._environ = environ

    def find(self, url: Any, config: Config, misses: Misses) -> Credentials | None:
        environ = os.environ if self._environ is None else self._environ
        path = text_or_none(environ.get(ENV_CREDENTIALS))
        if path is None:
            misses.note(f"{ENV_CREDENTIALS} is not set")
            return None
        if not os.path.isfile(os.path.expanduser(path)):
            raise ConfigError(
                f"{ENV_CREDENTIALS} points at {home_relative(os.path.expanduser(path))}, which is not a "
                "file; give the path of a service-account key file, or unset it"
            )
        key = read_credentials_json(path, f"env {ENV_CREDENTIALS}")
        return Credentials(key_values(key, path), f"env {ENV_CREDENTIALS}")


# -- application default credentials ---------------------------------------------------------------

# Variables that change what google.auth.default() finds; the lookup is cached per their values.
_ADC_VARIABLES = (
    "HOME",
    "CLOUDSDK_CONFIG",
    ENV_CREDENTIALS,
    "GOOGLE_CLOUD_PROJECT",
    "GCE_METADATA_HOST",
    "GCE_METADATA_IP",
    "NO_GCE_CHECK",
)
_adc_lock = threading.Lock()
_adc_cache: dict[tuple[str | None, ...], tuple[Any, str | None] | str] = {}


def default_credentials() -> tuple[Any, str | None] | str:
    """(credentials, project) from ``google.auth.default()``, or why it found none; cached per env.

    On a machine that is not on Google Cloud this asks the metadata server once, briefly (as every
    Google client library does); the answer is kept for the process.
    """
    cache_key = tuple(os.environ.get(name) for name in _ADC_VARIABLES)
    with _adc_lock:
        if cache_key in _adc_cache:
            return _adc_cache[cache_key]
    import google.auth
    import google.auth.exceptions

    found: tuple[Any, str | None] | str
    try:
        credentials, project = google.auth.default(scopes=list(SCOPES))
        found = (credentials, project)
    except google.auth.exceptions.DefaultCredentialsError as error:
        found = str(error).strip().splitlines()[0] if str(error).strip() else "none found"
    with _adc_lock:
        _adc_cache[cache_key] = found
    return found


def reset_default_credentials_cache() -> None:
    with _adc_lock:
        _adc_cache.clear()


def adc_kind(credentials: Any) -> str:
    name = type(credentials).__module__.rsplit(".", 1)[-1]
    return {
        "service_account": "service account key",
        "credentials": "gcloud user login",
        "compute_engine": "metadata server",
        "external_account": "workload identity federation",
        "impersonated_credentials": "impersonated service account",
    }.get(name, type(credentials).__name__)


class DefaultCredentialsResolver(ExplainingResolver):
    """``google.auth.default()``: gcloud's application-default login, workload identity, the GCE
    metadata server."""

    def find(self, url: Any, config: Config, misses: Misses) -> Credentials | None:
        found = default_credentials()
        if isinstance(found, str):
            misses.note(
                (f"none found ({found})" if len(found) < 160 else "none found")
                if found
                else "application default credentials found none"
            )
            return None
        credentials, _project = found
        principal = getattr(credentials, "service_account_email", None)
        values = {"auth": "adc", "principal": principal if isinstance(principal, str) else None}
        return Credentials(values, f"application default credentials: {adc_kind(credentials)}")


class AnonymousResolver(ExplainingResolver):
    """No credentials at all: reads of public buckets work; anything else is refused by Google."""

    def find(self, url: Any, config: Config, misses: Misses) -> Credentials | None:
        if not settings_for(config).anonymous:
            misses.note(f"{SECTION}.anonymous is false")
            return None
        return Credentials({"auth": "anonymous"}, "anonymous (no credentials found)")


__all__ = [
    "SCOPES",
    "AnonymousResolver",
    "ConfigResolver",
    "DefaultCredentialsResolver",
    "EmulatorResolver",
    "EnvironmentResolver",
    "default_credentials",
    "key_values",
    "reset_default_credentials_cache",
]
