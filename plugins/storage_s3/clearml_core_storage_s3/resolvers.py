"""The three credential resolvers of ``s3://`` URLs: clearml.conf (100), environment (200), boto3 (300).

Each answers with :class:`~clearml_core.credentials.Credentials` whose ``values`` hold some of
``key``, ``secret``, ``token`` (static keys), ``profile`` (a named AWS profile) and ``chain``
(True: let boto3 find and refresh the credentials itself); the driver takes endpoint, region and
TLS settings from :mod:`clearml_core_storage_s3.settings` whichever resolver answered.
A resolver that has nothing says why (``describe_miss(url, config)``), for ``storage resolve``
and for the missing-credentials error.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from clearml_core.credentials.chain import Credentials
from clearml_core.errors import ConfigError
from clearml_core_storage_s3.settings import (
    ENTRIES,
    ENV_KEY,
    ENV_PROFILE,
    ENV_SECRET,
    ENV_TOKEN,
    SECTION,
    _flag,
    _text,
    settings_for,
)

if TYPE_CHECKING:
    from clearml_core.config import Config


def credential_values(values: Mapping[str, Any]) -> dict[str, Any] | None:
    """The credential part of an entry or section: none at all for a public bucket
    (``anonymous``), else static keys, else a profile, else the chain."""
    if _flag(values.get("anonymous"), False):
        return {"anonymous": True}
    key, secret = _text(values.get("key")), _text(values.get("secret"))
    if key and secret:
        found: dict[str, Any] = {"key": key, "secret": secret}
        token = _text(values.get("token"))
        if token:
            found["token"] = token
        return found
    profile = _text(values.get("profile"))
    if profile:
        return {"profile": profile, "chain": True}
    if _flag(values.get("use_credentials_chain"), False):
        return {"chain": True}
    return None


class ConfigResolver:
    """``sdk.aws.s3.credentials`` (the most specific matching entry), then ``sdk.aws.s3`` itself."""

    def resolve(self, url: Any, config: Config) -> Credentials | None:
        settings = settings_for(config)
        entry = settings.match(settings.locate(url))
        if entry is not None:
            values = credential_values(entry.values)
            if values is not None:
                return Credentials(values, settings.entry_source(entry) + _how(values))
            settings.warn_unusable(entry)
            return None
        values = credential_values(settings.defaults)
        if values is not None:
            field = next(
                (name for name in ("anonymous", "key", "profile") if name in values), "use_credentials_chain"
            )
            return Credentials(values, settings.section_source(field) + _how(values))
        return None

    def describe_miss(self, url: Any, config: Config) -> str:
        settings = settings_for(config)
        location = settings.locate(url)
        entry = settings.match(location)
        if entry is not None:
            return (
                f"{settings.entry_source(entry)} ({entry.where}) matches but has no key/secret, "
                f"profile, use_credentials_chain or anonymous"
            )
        what = f"bucket {location.bucket!r}" + (f" at {location.host}" if location.host else "")
        return (
            f"no {ENTRIES} entry matches {what}, and {SECTION} sets no key/secret, profile, "
            "use_credentials_chain or anonymous"
        )


def _how(values: Mapping[str, Any]) -> str:
    if values.get("anonymous"):
        return " (anonymous: requests are not signed)"
    if "key" in values:
        return ""
    if "profile" in values:
        return f" (profile {values['profile']!r})"
    return " (boto3 credentials chain)"


class EnvironmentResolver:
    """``AWS_ACCESS_KEY_ID`` + ``AWS_SECRET_ACCESS_KEY`` (+ ``AWS_SESSION_TOKEN``), else ``AWS_PROFILE``."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._environ = environ

    def _variables(self) -> tuple[str | None, str | None, Mapping[str, str]]:
        environ = os.environ if self._environ is None else self._environ
        return _text(environ.get(ENV_KEY)), _text(environ.get(ENV_SECRET)), environ

    def resolve(self, url: Any, config: Config) -> Credentials | None:
        key, secret, environ = self._variables()
        if key and secret:
            values: dict[str, Any] = {"key": key, "secret": secret}
            token = _text(environ.get(ENV_TOKEN))
            if token:
                values["token"] = token
            return Credentials(values, f"env {ENV_KEY}")
        profile = _text(environ.get(ENV_PROFILE))
        if profile:
            return Credentials({"profile": profile, "chain": True}, f"env {ENV_PROFILE}")
        return None

    def describe_miss(self, url: Any, config: Config) -> str:
        key, secret, _environ = self._variables()
        if key or secret:
            present, absent = (ENV_KEY, ENV_SECRET) if key else (ENV_SECRET, ENV_KEY)
            return f"{present} is set but {absent} is not"
        return f"{ENV_KEY} / {ENV_SECRET} and {ENV_PROFILE} are not set"


# Variables that change what boto3's default chain finds; the lookup is cached per their values.
_CHAIN_VARIABLES = (
    "HOME",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_EC2_METADATA_DISABLED",
    ENV_KEY,
    ENV_SECRET,
    ENV_PROFILE,
)

_chain_lock = threading.Lock()
_chain_cache: dict[tuple[str | None, ...], tuple[str, str] | None] = {}


def boto_chain_lookup(environ: Mapping[str, str] | None = None) -> tuple[str, str] | None:
    """(method, access key id) of what boto3's default chain finds, or None; cached per environment.

    Instance-metadata lookups can take a second when there is no metadata service, so the answer
    is kept for the process (``reset_boto_chain_cache`` forgets it).
    """
    environ = os.environ if environ is None else environ
    cache_key = tuple(environ.get(name) for name in _CHAIN_VARIABLES)
    with _chain_lock:
        if cache_key in _chain_cache:
            return _chain_cache[cache_key]
    import botocore.exceptions
    import botocore.session

    try:
        credentials = botocore.session.Session().get_credentials()
    except (botocore.exceptions.ProfileNotFound, botocore.exceptions.ConfigParseError) as error:
        raise ConfigError(f"boto3's AWS configuration cannot be used: {error}") from None
    except botocore.exceptions.BotoCoreError:
        credentials = None
    found = None
    if credentials is not None and credentials.access_key:
        found = (str(getattr(credentials, "method", "") or "unknown"), str(credentials.access_key))
    with _chain_lock:
        _chain_cache[cache_key] = found
    return found


def reset_boto_chain_cache() -> None:
    with _chain_lock:
        _chain_cache.clear()


class BotoChainResolver:
    """boto3's own default chain: ``~/.aws`` files, web identity (OIDC), container and instance roles."""

    def resolve(self, url: Any, config: Config) -> Credentials | None:
        found = boto_chain_lookup()
        if found is None:
            return None
        method, access_key = found
        return Credentials({"chain": True, "access_key_id": access_key}, f"boto3 chain: {method}")

    def describe_miss(self, url: Any, config: Config) -> str:
        return "boto3 found no credentials (no ~/.aws/credentials or config profile, web identity token, or instance role)"


__all__ = [
    "BotoChainResolver",
    "ConfigResolver",
    "EnvironmentResolver",
    "boto_chain_lookup",
    "credential_values",
    "reset_boto_chain_cache",
]
