"""SDK clients shared by every driver of a process, one per distinct key.

A cloud SDK's client holds an HTTP connection pool and, once built, is safe to share between
threads; building one is slow. Drivers therefore keep their clients process-wide, keyed by what
makes two clients different (endpoint, credentials, transfer settings), so two buckets with
different keys never share a client and a thousand objects under one bucket never build a second.
"""

from __future__ import annotations

import abc
import contextlib
import threading
from collections.abc import Hashable
from typing import Any, Generic, TypeVar

__all__ = ["ClientCache"]

K = TypeVar("K", bound=Hashable)
C = TypeVar("C")


class ClientCache(abc.ABC, Generic[K, C]):
    """Clients one per key, built on first use under a lock (SDK sessions often are not
    thread-safe while clients are); thread-safe.

    A subclass implements :meth:`build`, and overrides :meth:`release` where a client is not
    closed with ``close()``. Tests count the clients with ``len()``; :meth:`clear` forgets them.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        """Held while a client is built; a subclass may guard its own state with it."""
        self._clients: dict[K, C] = {}

    @abc.abstractmethod
    def build(self, key: K) -> C:
        """A new client for ``key``; called with the lock held, once per key."""

    def release(self, client: C) -> None:
        """Free a forgotten client's connections (errors are ignored)."""
        close: Any = getattr(client, "close", None)
        if close is not None:
            close()

    def client(self, key: K) -> C:
        """The client of ``key``, built the first time it is asked for."""
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                client = self._clients[key] = self.build(key)
            return client

    def __len__(self) -> int:
        with self._lock:
            return len(self._clients)

    def clear(self) -> None:
        """Forget every client and release it; the next request builds a new one."""
        with self._lock:
            clients = list(self._clients.values())
            self._clients.clear()
        for client in clients:
            with contextlib.suppress(Exception):
                self.release(client)
