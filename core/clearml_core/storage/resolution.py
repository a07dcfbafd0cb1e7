"""What a URL means under the loaded configuration: substituted, parsed, its driver, its cache entry.

``StorageManager`` and the CLI's storage commands share it. The state behind it (the path
substitution and direct-access rules, the cache, the URLs already resolved) is built once per
loaded clearml.conf and ``CLEARML_CACHE_DIR``, and rebuilt when either changes, so a cache hit of
``get_local_copy`` is a dictionary lookup plus a ``stat``.

Importing this module is cheap: the URL parser, the rules, the drivers and the cache load on
first use.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path

    from clearml_core.config import Config
    from clearml_core.storage.cache import Cache
    from clearml_core.storage.driver import StorageDriver
    from clearml_core.storage.transfer import TransferSettings
    from clearml_core.storage.url import StorageURL

__all__ = ["Resolved", "State", "current", "describe_url", "driver", "parse", "transfer_settings"]

_RESOLVED_LIMIT = 4096


class Resolved:
    """What a URL text means here: after path substitution, parsed, direct or cached."""

    __slots__ = ("direct", "entry", "entry_path", "is_archive", "url")

    def __init__(self, url: StorageURL, direct: bool, entry: str, entry_path: Path | None) -> None:
        from clearml_core.storage.archive import archive_suffix

        self.url = url
        self.direct = direct
        """Used in place (``sdk.storage.direct_access``), never copied into the cache."""
        self.entry = entry
        """The name of its cache entry."""
        self.entry_path = entry_path
        """Where its cache entry is (None when it is used in place)."""
        self.is_archive = archive_suffix(url.name) is not None


class State:
    """Per loaded configuration: the rules, the cache, and URLs already resolved (a hit is cheap)."""

    def __init__(self, config: Config) -> None:
        from clearml_core.storage.cache import get_cache
        from clearml_core.storage.substitution import direct_access_rules, substitution_rules

        self.config = config
        self.env = os.environ.get("CLEARML_CACHE_DIR", "")
        self.substitutions = substitution_rules(config)
        self.direct_rules = direct_access_rules(config)
        self.cache: Cache = get_cache(config)
        self.resolved: dict[tuple[str | None, str], Resolved] = {}

    def resolve(self, remote_url: str | os.PathLike[str], context: str | None) -> Resolved:
        """``remote_url`` in cache context ``context`` (remembered: the next call is a lookup)."""
        key = (context, remote_url if isinstance(remote_url, str) else os.fspath(remote_url))
        found = self.resolved.get(key)
        if found is not None:
            return found
        from clearml_core.storage.cache import entry_name
        from clearml_core.storage.substitution import guess_content_type, is_direct, substitute
        from clearml_core.storage.url import parse_url

        text = substitute(key[1], self.substitutions)
        url = parse_url(text)
        canonical = str(url)
        direct = url.is_local and is_direct(canonical, self.direct_rules, guess_content_type(url.name))
        self.cache.use_context(context)  # as in ClearML, even when the file is used in place
        entry = entry_name(canonical, url.name)
        entry_path = None if direct else self.cache.entry_path(context, entry)
        resolved = Resolved(url, direct, entry, entry_path)
        if len(self.resolved) >= _RESOLVED_LIMIT:
            self.resolved.clear()
        self.resolved[key] = resolved
        return resolved


_state: State | None = None


def current() -> State:
    """The state of the loaded configuration (built again after clearml.conf or the cache folder changes)."""
    global _state
    from clearml_core.settings import get_config

    config = get_config()
    state = _state
    if state is None or state.config is not config or state.env != os.environ.get("CLEARML_CACHE_DIR", ""):
        state = _state = State(config)
    return state


def parse(url: str | os.PathLike[str] | StorageURL) -> StorageURL:
    """``url`` parsed, after ``sdk.storage.path_substitution`` when it is text or a path."""
    from clearml_core.storage.url import parse_url

    if isinstance(url, (str, os.PathLike)):
        from clearml_core.storage.substitution import substitute

        return parse_url(substitute(os.fspath(url), current().substitutions))
    return parse_url(url)


def driver(url: StorageURL) -> StorageDriver:
    """The driver that serves ``url`` under the loaded configuration."""
    from clearml_core.storage.backends import driver_for

    return driver_for(url, current().config)


def transfer_settings(**overrides: Any) -> TransferSettings:
    """``sdk.storage.transfer`` of the loaded configuration, with ``overrides`` (None: the setting)."""
    from clearml_core.storage.transfer import TransferSettings

    return TransferSettings.from_config(current().config).replace(**overrides)


def describe_url(text: str) -> dict[str, Any]:
    """What ``storage resolve`` shows besides credentials: the URL as used, its backend, its parts.

    A driver class may add backend-specific fields (endpoint, region, …) with a classmethod
    ``describe(url, config) -> Mapping[str, object]``; ``storage resolve`` shows them beside these.
    """
    from clearml_core.storage.backends import backend_for
    from clearml_core.storage.substitution import guess_content_type, is_direct, substitute
    from clearml_core.storage.url import parse_url

    state = current()
    substituted = substitute(text, state.substitutions)
    url = parse_url(substituted)
    backend = backend_for(url.scheme)
    driver_class = backend.driver_class
    describe = getattr(driver_class, "describe", None)
    details = dict(describe(url, state.config)) if callable(describe) else {}
    location: dict[str, Any] = {"scheme": url.scheme}
    if url.is_bucket:
        location.update(bucket=url.bucket, key=url.key, endpoint=url.endpoint)
    elif url.is_local:
        location.update(path=url.path)
    else:
        location.update(host=url.host, port=url.port, user=url.user, path=url.path)
    return {
        "url": str(url),
        "substituted_from": text if substituted != text else None,
        "backend": backend.name,
        "driver": f"{driver_class.__module__}:{driver_class.__qualname__}",
        "location": location,
        "direct_access": url.is_local
        and is_direct(str(url), state.direct_rules, guess_content_type(url.name)),
        "details": details,
    }
