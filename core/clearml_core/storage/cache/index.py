"""The cache's bookkeeping: one SQLite file of entries, their sizes and last use, per-context counters.

Only misses and eviction write it (a hit never opens it). It can always be rebuilt from the
context folders, so it never waits for the disk, and a missing or damaged index is rebuilt once,
by whoever notices first, under ``.locks/index.lock``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from clearml_core.sqlite_connections import ThreadConnections
from clearml_core.storage.cache.files import subfolders, tree_size
from clearml_core.storage.cache.locks import EntryLock
from clearml_core.storage.cache.names import ARCHIVE_MARK, INDEX_NAME, LOCKS_FOLDER, entry_guarding

if TYPE_CHECKING:
    import sqlite3

log = logging.getLogger("clearml_core.storage.cache")

INDEX_LOCK = "index.lock"
_SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS entries (
    context TEXT NOT NULL,
    name TEXT NOT NULL,
    size INTEGER NOT NULL DEFAULT 0,
    last_access REAL NOT NULL,
    created REAL NOT NULL,
    parent TEXT,
    url TEXT,
    PRIMARY KEY (context, name)
);
CREATE INDEX IF NOT EXISTS entries_lru ON entries (last_access);
CREATE INDEX IF NOT EXISTS entries_context_lru ON entries (context, last_access) WHERE parent IS NULL;
CREATE INDEX IF NOT EXISTS entries_parent ON entries (context, parent) WHERE parent IS NOT NULL;
CREATE TABLE IF NOT EXISTS contexts (
    context TEXT PRIMARY KEY,
    count INTEGER NOT NULL DEFAULT 0,
    bytes INTEGER NOT NULL DEFAULT 0
);
CREATE TRIGGER IF NOT EXISTS entries_insert AFTER INSERT ON entries BEGIN
    INSERT INTO contexts (context)
        SELECT NEW.context WHERE NOT EXISTS (SELECT 1 FROM contexts WHERE context = NEW.context);
    UPDATE contexts SET count = count + (NEW.parent IS NULL), bytes = bytes + NEW.size
        WHERE context = NEW.context;
END;
CREATE TRIGGER IF NOT EXISTS entries_delete AFTER DELETE ON entries BEGIN
    UPDATE contexts SET count = count - (OLD.parent IS NULL), bytes = bytes - OLD.size
        WHERE context = OLD.context;
END;
CREATE TRIGGER IF NOT EXISTS entries_update AFTER UPDATE OF size ON entries BEGIN
    UPDATE contexts SET bytes = bytes - OLD.size + NEW.size WHERE context = NEW.context;
END;
"""


@dataclass(frozen=True)
class EntryRow:
    """One row of the index: a cached object or an extracted archive folder."""

    context: str
    name: str
    size: int
    last_access: float
    created: float
    parent: str | None
    url: str | None


class CacheIndex:
    """The SQLite bookkeeping of one cache folder; one connection per thread and process."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.path = base / INDEX_NAME
        # The index can always be rebuilt from the folders, so it never waits for the disk: no
        # fsync on commits or checkpoints. A power cut may lose its latest rows (those entries
        # then wait for a rebuild to be evicted) or damage it (then it is rebuilt).
        self._connections = ThreadConnections(self.path, timeout=60, synchronous="OFF")
        self._ready_pid: int | None = None
        self._ready_lock = threading.Lock()

    # connections -------------------------------------------------------------------------
    def connection(self) -> sqlite3.Connection:
        """This thread's connection to a usable index (built or rebuilt on first use)."""
        conn = self._connections.current()
        if conn is not None:
            return conn
        with self._ready_lock:
            conn = self._open()
        self._connections.adopt(conn)
        return conn

    def _open(self) -> sqlite3.Connection:
        """A connection to a usable index: created, filled from disk, or rebuilt if damaged."""
        import sqlite3

        try:
            conn = self._connections.connect()
            if self._ready_pid == os.getpid() or self._built(conn):
                self._ready_pid = os.getpid()
                return conn
        except sqlite3.DatabaseError as error:
            if _is_busy(error):
                raise
            log.warning("the cache index %s is unreadable (%s); rebuilding it from disk", self.path, error)
            return self._recover()
        with EntryLock(self.base / LOCKS_FOLDER / INDEX_LOCK):
            if not self._built(conn):  # another process may have filled it while we waited
                self._rebuild(conn)
        self._ready_pid = os.getpid()
        return conn

    def _built(self, conn: sqlite3.Connection) -> bool:
        conn.executescript(_SCHEMA)
        row = conn.execute("SELECT value FROM meta WHERE key = 'built'").fetchone()
        return row is not None

    def _recover(self) -> sqlite3.Connection:
        """Replace a damaged index with one rebuilt from disk (once, whoever notices first)."""
        import sqlite3

        self._connections.discard()
        with EntryLock(self.base / LOCKS_FOLDER / INDEX_LOCK):
            try:  # someone else may have rebuilt it already
                conn = self._connections.connect()
                if self._built(conn) and conn.execute("PRAGMA quick_check").fetchone()[0] == "ok":
                    self._ready_pid = os.getpid()
                    return conn
                conn.close()
            except sqlite3.DatabaseError:
                pass
            for suffix in ("", "-wal", "-shm", "-journal"):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(f"{self.path}{suffix}")
            conn = self._connections.connect()
            self._built(conn)
            self._rebuild(conn)
        self._ready_pid = os.getpid()
        return conn

    def _rebuild(self, conn: sqlite3.Connection) -> None:
        """Index every complete entry found in the context folders (their mtime is their last use)."""
        rows = []
        for context_dir in subfolders(self.base):
            for item in os.scandir(context_dir):
                if item.name.startswith(".") or entry_guarding(item.name) is None:
                    continue
                try:
                    st = item.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue
                parent = None
                if item.is_dir(follow_symlinks=False):
                    size = tree_size(Path(item.path))
                    head, mark, _tail = item.name.rpartition(ARCHIVE_MARK)
                    if mark and os.path.isfile(os.path.join(context_dir.path, head)):
                        parent = head
                else:
                    size = st.st_size
                rows.append((context_dir.name, item.name, size, st.st_mtime, st.st_mtime, parent, None))
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute("DELETE FROM entries")
            conn.execute("DELETE FROM contexts")
            conn.executemany("INSERT INTO entries VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
            conn.execute(
                "INSERT OR REPLACE INTO meta VALUES ('built', ?), ('version', ?)",
                (str(time.time()), str(_SCHEMA_VERSION)),
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        if rows:
            log.info("rebuilt the cache index of %s from %d entries on disk", self.base, len(rows))

    def _run(self, action: Callable[[sqlite3.Connection], Any]) -> Any:
        """Run ``action`` on this thread's connection; a damaged index is rebuilt once."""
        import sqlite3

        conn = self.connection()
        try:
            return action(conn)
        except sqlite3.DatabaseError as error:
            if _is_busy(error):
                raise
            log.warning("the cache index %s is damaged (%s); rebuilding it from disk", self.path, error)
            with self._ready_lock:
                conn = self._recover()
            self._connections.adopt(conn)
            return action(conn)

    # operations --------------------------------------------------------------------------
    def upsert(self, row: EntryRow) -> None:
        def action(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO entries VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (context, name) DO UPDATE "
                "SET size = excluded.size, last_access = excluded.last_access, created = excluded.created, "
                "parent = excluded.parent, url = COALESCE(excluded.url, entries.url)",
                (row.context, row.name, row.size, row.last_access, row.created, row.parent, row.url),
            )

        self._run(action)

    def complete(self, row: EntryRow, *, replacing: bool) -> tuple[list[str], int, int]:
        """Record a finished download; returns what to delete, the context's count, total bytes.

        ``replacing`` (the entry existed: a forced download) also drops what was extracted from
        its previous version and returns those names. The counts come back with the write, so
        the caller checks limits without another query.
        """

        def action(conn: sqlite3.Connection) -> tuple[list[str], int, int]:
            now = time.time()
            children: list[str] = []
            conn.execute("BEGIN IMMEDIATE")
            try:
                if replacing:
                    children = [
                        name
                        for (name,) in conn.execute(
                            "SELECT name FROM entries WHERE context = ? AND parent = ?",
                            (row.context, row.name),
                        ).fetchall()
                    ]
                    conn.execute(
                        "DELETE FROM entries WHERE context = ? AND parent = ?", (row.context, row.name)
                    )
                conn.execute(
                    "INSERT INTO entries VALUES (?, ?, ?, ?, ?, NULL, ?) ON CONFLICT (context, name) DO UPDATE "
                    "SET size = excluded.size, last_access = excluded.last_access, created = excluded.created, "
                    "parent = NULL, url = COALESCE(excluded.url, entries.url)",
                    (row.context, row.name, row.size, now, now, row.url),
                )
                counts = conn.execute(
                    "SELECT count, (SELECT COALESCE(SUM(bytes), 0) FROM contexts) FROM contexts WHERE context = ?",
                    (row.context,),
                ).fetchone()
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            return children, int(counts[0]), int(counts[1])

        result: tuple[list[str], int, int] = self._run(action)
        return result

    def record(self, rows: list[EntryRow]) -> dict[str, tuple[int, int]]:
        """Record new entries in one transaction; returns (entry count, total bytes) per context."""

        def action(conn: sqlite3.Connection) -> dict[str, tuple[int, int]]:
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.executemany(
                    "INSERT INTO entries VALUES (?, ?, ?, ?, ?, NULL, ?) ON CONFLICT (context, name) DO UPDATE "
                    "SET size = excluded.size, last_access = excluded.last_access, created = excluded.created, "
                    "parent = NULL, url = COALESCE(excluded.url, entries.url)",
                    [(r.context, r.name, r.size, r.last_access, r.created, r.url) for r in rows],
                )
                total = int(conn.execute("SELECT COALESCE(SUM(bytes), 0) FROM contexts").fetchone()[0])
                counts = {}
                for context in {r.context for r in rows}:
                    found = conn.execute(
                        "SELECT count FROM contexts WHERE context = ?", (context,)
                    ).fetchone()
                    counts[context] = (int(found[0]) if found else 0, total)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            return counts

        result: dict[str, tuple[int, int]] = self._run(action)
        return result

    def get(self, context: str, name: str) -> EntryRow | None:
        found = self._run(
            lambda conn: conn.execute(
                "SELECT * FROM entries WHERE context = ? AND name = ?", (context, name)
            ).fetchone()
        )
        return EntryRow(*found) if found else None

    def touch(self, context: str, name: str, when: float) -> None:
        self._run(
            lambda conn: conn.execute(
                "UPDATE entries SET last_access = ? WHERE context = ? AND name = ?", (when, context, name)
            )
        )

    def remove(self, context: str, name: str) -> None:
        self._run(
            lambda conn: conn.execute("DELETE FROM entries WHERE context = ? AND name = ?", (context, name))
        )

    def children(self, context: str, name: str) -> list[EntryRow]:
        rows = self._run(
            lambda conn: conn.execute(
                "SELECT * FROM entries WHERE context = ? AND parent = ?", (context, name)
            ).fetchall()
        )
        return [EntryRow(*row) for row in rows]

    def count(self, context: str) -> int:
        row = self._run(
            lambda conn: conn.execute("SELECT count FROM contexts WHERE context = ?", (context,)).fetchone()
        )
        return int(row[0]) if row else 0

    def total_bytes(self) -> int:
        row = self._run(lambda conn: conn.execute("SELECT COALESCE(SUM(bytes), 0) FROM contexts").fetchone())
        return int(row[0])

    def oldest(self, context: str | None, limit: int, skip: set[tuple[str, str]]) -> list[EntryRow]:
        """The least recently used rows (top-level entries only when ``context`` is given)."""
        want = limit + len(skip)
        if context is not None:
            sql = "SELECT * FROM entries WHERE context = ? AND parent IS NULL ORDER BY last_access LIMIT ?"
            params: tuple[Any, ...] = (context, want)
        else:
            sql = "SELECT * FROM entries ORDER BY last_access LIMIT ?"
            params = (want,)
        rows = self._run(lambda conn: conn.execute(sql, params).fetchall())
        return [row for row in map(lambda r: EntryRow(*r), rows) if (row.context, row.name) not in skip][
            :limit
        ]

    def rows(self, context: str | None = None) -> list[EntryRow]:
        if context is None:
            found = self._run(
                lambda conn: conn.execute("SELECT * FROM entries ORDER BY last_access DESC").fetchall()
            )
        else:
            found = self._run(
                lambda conn: conn.execute(
                    "SELECT * FROM entries WHERE context = ? ORDER BY last_access DESC", (context,)
                ).fetchall()
            )
        return [EntryRow(*row) for row in found]

    def close(self) -> None:
        """Close this thread's connection (the recorder thread keeps its own)."""
        self._connections.discard()


def _is_busy(error: Exception) -> bool:
    """Locked / busy is contention, not damage: never a reason to rebuild."""
    text = str(error).lower()
    return "locked" in text or "busy" in text


__all__ = ["INDEX_LOCK", "CacheIndex", "EntryRow"]
