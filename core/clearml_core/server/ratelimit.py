"""Sign-in throttling: an address that fails too often is locked out of signing in for a while.

Counted per client address (``X-Forwarded-For`` is not trusted: anyone can send it) within one
server process; each lockout is logged once with the address and the user names it tried.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger("clearml_core.server.auth")


@dataclass
class _Source:
    failures: deque[float] = field(default_factory=deque)
    locked_until: float = 0.0
    names: set[str] = field(default_factory=set)


class LoginLimiter:
    """``max_failures`` failed sign-ins within ``window_sec`` lock an address out for ``lockout_sec``."""

    def __init__(
        self,
        max_failures: int = 10,
        window_sec: float = 60.0,
        lockout_sec: float = 300.0,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_failures = max(1, max_failures)
        self.window_sec = window_sec
        self.lockout_sec = lockout_sec
        self.clock = clock
        self._sources: dict[str, _Source] = {}
        self._lock = threading.Lock()

    def locked_for(self, address: str) -> float:
        """Seconds left of the address's lockout (0: it may try)."""
        with self._lock:
            source = self._sources.get(address)
            if source is None:
                return 0.0
            return max(0.0, source.locked_until - self.clock())

    def failed(self, address: str, name: str) -> None:
        now = self.clock()
        with self._lock:
            source = self._sources.setdefault(address, _Source())
            source.failures.append(now)
            if name:
                source.names.add(name[:64])
            while source.failures and now - source.failures[0] > self.window_sec:
                source.failures.popleft()
            if len(source.failures) < self.max_failures or source.locked_until > now:
                return
            source.locked_until = now + self.lockout_sec
            names = ", ".join(sorted(source.names)[:10]) or "-"
            count = len(source.failures)
            source.failures.clear()
            source.names.clear()
        log.warning(
            "%d failed sign-ins from %s within %g s (user names: %s); refusing sign-ins from it for %g s",
            count,
            address,
            self.window_sec,
            names,
            self.lockout_sec,
        )

    def succeeded(self, address: str) -> None:
        with self._lock:
            source = self._sources.get(address)
            if source is not None and source.locked_until <= self.clock():
                del self._sources[address]


__all__ = ["LoginLimiter"]
