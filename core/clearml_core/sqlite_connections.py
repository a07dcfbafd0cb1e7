"""One SQLite connection per thread and per process, for a database file many processes share.

The embedded control plane and the storage cache's index are such files. A connection is never
shared between threads (each opens its own on first use) nor carried across a fork: SQLite's
locks would be corrupted by a child that used or closed its parent's connection, so a forked
child opens its own and keeps the parent's referenced, untouched, so that garbage collection does
not close them under the parent either. Every connection is in WAL mode (readers never block the
writer), autocommits (callers say ``BEGIN`` themselves), and waits up to ``timeout`` seconds for a
lock another process holds (SQLite's busy timeout). The connection of a thread that has ended is
closed when another thread opens one, so short-lived threads leave no open files behind.
"""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from clearml_core.forks import reset_in_forked_child

if TYPE_CHECKING:
    import sqlite3


class ThreadConnections:
    """This process's connections to the SQLite file at ``path``, one per thread.

    ``synchronous`` is SQLite's ``PRAGMA synchronous``: ``NORMAL`` (safe in WAL mode) or ``OFF`` for
    a file that can be rebuilt from elsewhere and so never waits for the disk.
    """

    def __init__(self, path: str | os.PathLike[str], *, timeout: float, synchronous: str = "NORMAL") -> None:
        self.path = Path(path)
        self.timeout = timeout
        self.synchronous = synchronous
        self._local = threading.local()
        self._lock = threading.Lock()
        self._open: list[tuple[threading.Thread, sqlite3.Connection]] = []
        reset_in_forked_child(self, ThreadConnections._forget_parents)

    def _forget_parents(self) -> None:
        """In a forked child: never use (or close) the parent's connections; keep them referenced."""
        _ORPHANS.extend(conn for _thread, conn in self._open)
        self._open = []
        self._local = threading.local()
        self._lock = threading.Lock()

    def current(self) -> sqlite3.Connection | None:
        """This thread's connection, or None when it has none yet (as in a forked child)."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        return conn

    def get(self) -> sqlite3.Connection:
        """This thread's connection, opened on first use."""
        conn = self.current()
        if conn is None:
            conn = self.connect()
            self.adopt(conn)
        return conn

    def connect(self) -> sqlite3.Connection:
        """A new connection, set up (WAL, busy timeout, autocommit) but not yet this thread's."""
        import sqlite3

        conn = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None, check_same_thread=False)
        try:
            self._use_wal(conn)
            conn.execute(f"PRAGMA synchronous = {self.synchronous}")
        except BaseException:
            conn.close()
            raise
        return conn

    def _use_wal(self, conn: sqlite3.Connection) -> None:
        """Put the file in WAL mode (it stays so). Switching needs the file to itself, and SQLite
        answers "database is locked" at once instead of waiting its busy timeout when processes
        open a new file together: retry until ``timeout``."""
        import sqlite3
        import time

        if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal":
            return
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                conn.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError as error:
                if "locked" not in str(error) or time.monotonic() > deadline:
                    raise
                time.sleep(0.005)

    def adopt(self, conn: sqlite3.Connection) -> None:
        """Make ``conn`` this thread's connection (closing the one it replaces)."""
        old = getattr(self._local, "conn", None)
        me = threading.current_thread()
        with self._lock:
            ended = [c for thread, c in self._open if not thread.is_alive()]
            self._open = [(t, c) for t, c in self._open if t.is_alive() and c is not old]
            self._open.append((me, conn))
        self._local.conn = conn
        for stale in [*ended, *([old] if old is not None and old is not conn else [])]:
            with contextlib.suppress(Exception):
                stale.close()

    def discard(self) -> None:
        """Close and forget this thread's connection (the next :meth:`get` opens another)."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            return
        self._local.conn = None
        with self._lock:
            self._open = [(t, c) for t, c in self._open if c is not conn]
        with contextlib.suppress(Exception):
            conn.close()

    def close(self) -> None:
        """Close every connection this process opened (a forked child's inherited ones stay)."""
        with self._lock:
            connections, self._open = [conn for _thread, conn in self._open], []
        self._local = threading.local()
        for conn in connections:
            conn.close()


_ORPHANS: list[sqlite3.Connection] = []
"""A forked child's inherited connections: referenced so they are never closed in the child."""

__all__ = ["ThreadConnections"]
