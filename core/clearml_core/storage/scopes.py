"""Resolve once per scope: what a driver works out for one URL serves every URL of its scope.

A driver instance serves many URLs from many threads. Working out where a URL points and who
may touch it (the credential chain, endpoint settings, a client key) is the same for every key
under one bucket and configuration entry, or for every path on one server, so drivers keep the
answer per *scope* — a hashable the driver picks, such as ``(bucket, entry index)`` — in a
:class:`ScopeMemo`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

__all__ = ["ScopeMemo"]

T = TypeVar("T")


class ScopeMemo(Generic[T]):
    """Values resolved once per scope and shared by every caller of that scope; thread-safe.

    ``resolve`` runs outside the lock (a credential chain may be slow, and may fail: then nothing
    is kept). Two threads resolving one scope at once both resolve; the first answer kept is the
    one both get.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[Hashable, T] = {}

    def get(
        self, scope: Hashable, resolve: Callable[[], T], *, stale: Callable[[T], bool] | None = None
    ) -> T:
        """The value kept for ``scope``, or ``resolve()`` kept from now on.

        ``stale`` says when a kept value must be resolved afresh (its connection pool was closed).
        """
        with self._lock:
            if scope in self._values:
                found = self._values[scope]
                if stale is None or not stale(found):
                    return found
                del self._values[scope]
        value = resolve()
        with self._lock:
            return self._values.setdefault(scope, value)

    def clear(self) -> None:
        """Forget every scope (the driver is closed, or its settings changed)."""
        with self._lock:
            self._values.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._values)
