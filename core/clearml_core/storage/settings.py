"""Helpers for a storage backend's settings module: reading its clearml.conf section.

A backend parses its section (``sdk.aws.s3``, ``sdk.azure.storage``, …) once per loaded
configuration (:class:`SettingsCache`), reads optional text values (:func:`text_or_none`), and
names where a bad value came from in its messages (:func:`source_file`, :func:`home_relative`);
a warning about an entry is said once (:class:`FirstTime`), not once per URL.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Callable, Hashable, Sequence
from typing import TYPE_CHECKING, Any, Generic, TypeVar

if TYPE_CHECKING:
    from clearml_core.config import Config

__all__ = ["FirstTime", "SettingsCache", "home_relative", "source_file", "text_or_none"]

T = TypeVar("T")


def text_or_none(value: Any) -> str | None:
    """A setting's text without surrounding blanks; None when unset or blank."""
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def home_relative(path: str | os.PathLike[str]) -> str:
    """``/home/me/.ssh/id_ed25519`` → ``~/.ssh/id_ed25519`` for messages."""
    text = os.fspath(path)
    home = os.path.expanduser("~")
    if home not in ("", "/") and (text == home or text.startswith(home + os.sep)):
        return "~" + text[len(home) :]
    return text


def source_file(origin: str) -> str:
    """A config origin (``/home/me/clearml.conf:12``, ``env NAME``, ``default``) without its line."""
    if origin.startswith("env ") or origin == "default":
        return origin
    path, sep, line = origin.rpartition(":")
    return home_relative(path if sep and line.isdigit() else origin)


class SettingsCache(Generic[T]):
    """A backend's parsed settings, one per loaded configuration; thread-safe.

    ``parse(config)`` runs once per configuration (the configuration is held weakly), under a
    lock. Settings that also read environment variables name them in ``environ_keys``: they are
    parsed again when one of those variables changes.
    """

    def __init__(self, parse: Callable[[Config], T], *, environ_keys: Sequence[str] = ()) -> None:
        self._parse = parse
        self._environ_keys = tuple(environ_keys)
        self._lock = threading.Lock()
        self._cache: weakref.WeakKeyDictionary[Any, tuple[tuple[str | None, ...], T]] = (
            weakref.WeakKeyDictionary()
        )

    def get(self, config: Config) -> T:
        """The settings of ``config``, parsed the first time they are asked for."""
        state = tuple(os.environ.get(name) for name in self._environ_keys)
        with self._lock:
            found = self._cache.get(config)
            if found is None or found[0] != state:
                found = self._cache[config] = (state, self._parse(config))
            return found[1]


class FirstTime:
    """Keys seen so far, safe from many threads: say a warning about an entry once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: set[Hashable] = set()

    def __call__(self, key: Hashable) -> bool:
        """True the first time ``key`` is offered, False every time after."""
        with self._lock:
            if key in self._seen:
                return False
            self._seen.add(key)
            return True
