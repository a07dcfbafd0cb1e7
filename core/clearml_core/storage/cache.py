"""The download cache: one file per remote object, shared safely by every process on the machine.

Layout (``<base>`` is ``CLEARML_CACHE_DIR``, else ``sdk.storage.cache.default_base_dir``, else
``~/.clearml-core/cache``)::

    <base>/clearml-core/                 everything the cache writes, and all it ever deletes
        index.sqlite3                    bookkeeping: entries, sizes, last use (WAL mode)
        <context>/<md5>.<name>           a complete cached object (context "global" by default)
        <context>/<md5>.<name>_artifacts_archive[_<name>]/   an extracted archive
        <context>/.partial.<md5>.<name>  a download in progress (or killed)
        <context>/.locks/entries.lock    every entry's lock: one byte each (4,096 files elsewhere)

The base is often ClearML's own cache folder (clearml-init writes ``default_base_dir:
~/.clearml/cache``), where ClearML keeps ``storage_manager/<context>/<md5>.<name>`` files of the
very same shape. So nothing outside ``<base>/clearml-core/`` is ever read as an entry, evicted or
cleared, and ``cache clear`` removes only names of the cache's own shape even inside it.

Why it is safe:

* **One download per object.** A miss takes the entry's exclusive lock; other processes and
  threads asking for the same URL block on it and, once it is released, find the complete file
  and return it. A process that dies releases its locks with it. On Linux each entry's lock is one
  byte of the context's ``.locks/entries.lock`` (an open-file-description byte-range lock, keyed
  by a 60-bit hash of the entry's name), so a miss never creates a lock file; elsewhere entries
  hash onto 4,096 lock files locked with ``flock``.
* **No corrupt entry, ever.** Bytes go to ``.partial.<entry>`` and are renamed to the entry's
  name only once complete, so an entry that exists is whole: a download killed at any point
  (kill -9) leaves at most the partial file, which the next download of that entry overwrites and
  eviction removes. With ``sdk.storage.cache.fsync`` the bytes are also flushed to disk before the
  rename, so a power cut cannot leave a truncated entry either (a rename lost in the cut is only a
  miss next time); that costs one disk flush per download — about as much as downloading a
  megabyte over a fast link — so it is off by default.
* **Bookkeeping without scanning.** A cache hit costs a ``stat`` and a ``utime`` (the file's
  modification time is its last use), and never opens the index. A miss returns once its file is
  in place; a background thread records new entries in a small SQLite index with per-context
  counters and enforces the limits, so a miss costs the same with 5,000 entries as with 100.
  Eviction takes the least recently used rows first, re-checks each one's modification time
  (hits since then move it back), and skips entries another process has locked. A missing or
  corrupt index is rebuilt from the folders.

Limits: the per-context file count (``set_cache_file_limit``, default
``sdk.storage.cache.default_cache_manager_size``), the total size
(``sdk.storage.cache.size.max_used_bytes``, -1 for none) and the free disk space to keep
(``min_free_bytes``); a cleanup frees ``cleanup_margin_percent`` more than strictly needed.
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import functools
import hashlib
import logging
import os
import queue
import re
import shutil
import struct
import sys
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from clearml_core.errors import UserError
from clearml_core.storage.archive import TEMP_PREFIX as EXTRACTING_PREFIX
from clearml_core.storage.driver import TEMP_SUFFIX
from clearml_core.storage.errors import StorageError

if TYPE_CHECKING:
    import sqlite3

    from clearml_core.config import Config

log = logging.getLogger(__name__)

CACHE_DIR_VARIABLE = "CLEARML_CACHE_DIR"
DEFAULT_BASE_DIR = "~/.clearml-core/cache"
CACHE_FOLDER = "clearml-core"
"""The cache's own folder inside the base: the base may be ClearML's cache folder as well."""
DEFAULT_CONTEXT = "global"
DEFAULT_FILE_LIMIT = 100
INDEX_NAME = "index.sqlite3"
PARTIAL_PREFIX = ".partial."
LOCKS_FOLDER = ".locks"
LOCK_STRIPES = 4096
ARCHIVE_MARK = "_artifacts_archive"

_MAX_NAME_BYTES = 150  # of the object's name; with the hash, marks and suffixes it stays < 255
_SCHEMA_VERSION = 1


class ZeroSizeDownloadError(StorageError):
    """A download produced an empty file although the object is not known to be empty."""


class CacheError(UserError):
    """The cache folder cannot be used (not writable, not a folder)."""


# -- settings ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class CacheSettings:
    """The cache's configuration, read once per loaded clearml.conf."""

    base_dir: Path
    default_file_limit: int = DEFAULT_FILE_LIMIT
    max_used_bytes: int = -1
    min_free_bytes: int = 0
    cleanup_margin_percent: float = 5.0
    zero_file_size_check: bool = False
    fsync: bool = False

    @classmethod
    def from_config(cls, config: Config) -> CacheSettings:
        size = "sdk.storage.cache.size"
        return cls(
            base_dir=cache_base_dir(config),
            default_file_limit=config.get_int("sdk.storage.cache.default_cache_manager_size", None)
            or DEFAULT_FILE_LIMIT,
            max_used_bytes=_int(config, f"{size}.max_used_bytes", -1),
            min_free_bytes=max(0, _int(config, f"{size}.min_free_bytes", 0)),
            cleanup_margin_percent=max(0.0, config.get_float(f"{size}.cleanup_margin_percent", 5.0) or 0.0),
            zero_file_size_check=config.get_bool("sdk.storage.cache.zero_file_size_check", False),
            fsync=config.get_bool("sdk.storage.cache.fsync", False),
        )


def _int(config: Config, key: str, default: int) -> int:
    value = config.get_int(key, default)
    return default if value is None else value


def cache_base_dir(config: Config | None = None) -> Path:
    """``CLEARML_CACHE_DIR`` → ``sdk.storage.cache.default_base_dir`` → ``~/.clearml-core/cache``."""
    named = os.environ.get(CACHE_DIR_VARIABLE, "").strip()
    if not named and config is not None:
        named = (config.get_str("sdk.storage.cache.default_base_dir") or "").strip()
    return Path(os.path.expandvars(named or DEFAULT_BASE_DIR)).expanduser().absolute()


# -- names ------------------------------------------------------------------------------------


def _safe_name(name: str) -> str:
    """The object's name as a file name: no separators, not empty, not too long for the disk."""
    name = name.replace("/", "_").replace("\\", "_").replace("\x00", "_").strip()
    if name in ("", ".", ".."):
        name = "object"
    encoded = name.encode("utf-8", "surrogateescape")
    if len(encoded) <= _MAX_NAME_BYTES:
        return name
    # keep up to two suffixes (.tar.gz) and shorten the stem
    stem, dot, suffix = name.partition(".")
    suffix = (dot + suffix)[-40:] if dot else ""
    room = _MAX_NAME_BYTES - len(suffix.encode("utf-8", "surrogateescape"))
    stem = encoded[:room].decode("utf-8", "ignore")
    return stem + suffix


def entry_name(url_text: str, name: str) -> str:
    """``<md5 of the normalised URL>.<object name>``: unique per URL, ends with the object's name."""
    digest = hashlib.md5(url_text.encode("utf-8", "surrogateescape"), usedforsecurity=False).hexdigest()
    return f"{digest}.{_safe_name(name)}"


def archive_folder_name(entry: str, name: str | None = None) -> str:
    """The folder an archive entry is extracted into (``name`` distinguishes several extractions)."""
    if not name:
        return entry + ARCHIVE_MARK
    safe = _safe_name(name)
    if len(safe) > 40:
        safe = hashlib.md5(safe.encode(), usedforsecurity=False).hexdigest()
    return f"{entry}{ARCHIVE_MARK}_{safe}"


def entry_guarding(name: str) -> str | None:
    """The entry whose lock guards ``name`` in a context folder, or None when the cache never
    writes a name of that shape (an entry, an extraction of one, a partial download, a temporary
    file of either).

    Entries are ``<32 hex digits>.<name>``; ClearML's are too, which is why the cache keeps to
    its own folder.
    """
    if name.startswith(PARTIAL_PREFIX):
        name = name[len(PARTIAL_PREFIX) :]
    elif name.startswith("." + PARTIAL_PREFIX) and name.endswith(TEMP_SUFFIX):
        # the driver's temporary file of a partial download: .<partial>.<random>.clearml-part
        name = name[len(PARTIAL_PREFIX) + 1 : -len(TEMP_SUFFIX)].rpartition(".")[0]
    elif name.startswith(EXTRACTING_PREFIX):  # an extraction under way (or killed)
        name = name[len(EXTRACTING_PREFIX) :]
    if _ENTRY_SHAPE.match(name) is None:
        return None
    return name.partition(ARCHIVE_MARK)[0]


_ENTRY_SHAPE = re.compile(r"[0-9a-f]{32}\.[^/]")


def _digest(name: str) -> int:
    return int(
        hashlib.md5(name.encode("utf-8", "surrogateescape"), usedforsecurity=False).hexdigest()[:15], 16
    )


def _stripe(name: str) -> str:
    """Without byte-range locks: one of ``LOCK_STRIPES`` lock files, picked by a hash of the name."""
    return f"{_digest(name) % LOCK_STRIPES:03x}.lock"


def _entry_lock(folder: Path, name: str) -> EntryLock:
    """Entry ``name``'s lock in a context folder: a byte of ``entries.lock`` (Linux) or a stripe file."""
    if _OFD:
        return EntryLock(folder / LOCKS_FOLDER / ENTRY_LOCKS, offset=_digest(name))
    return EntryLock(folder / LOCKS_FOLDER / _stripe(name))


@functools.lru_cache(maxsize=256)
def _context_folder_name(context: str | None) -> str:
    context = str(context or DEFAULT_CONTEXT)
    safe = _safe_name(context)
    if safe.startswith("."):
        safe = "_" + safe[1:]
    return safe


# -- locking ----------------------------------------------------------------------------------


def _ofd_locks() -> bool:
    """Whether this system has open-file-description byte-range locks (Linux 3.15+)."""
    import fcntl

    return hasattr(fcntl, "F_OFD_SETLKW") and sys.platform.startswith("linux")


class EntryLock:
    """An exclusive lock shared by processes and threads: ``flock`` on a file, or one byte of it.

    With ``offset`` (and on Linux) it is an open-file-description lock (``F_OFD_SETLK``) on the
    byte at ``offset`` of a shared lock file, so every entry of a context has its own lock in one
    file that is never re-created. Otherwise it is a ``flock`` on the whole file. Both belong to
    the open file description: two threads of one process exclude each other as two processes do,
    and a process that dies releases what it held. After acquiring, the file is checked to still
    be the one at the path (someone may have deleted the cache meanwhile), so two holders never
    lock two different files of one name.
    """

    def __init__(self, path: Path, offset: int | None = None) -> None:
        self.path = path
        self.offset = offset if offset is not None and _OFD else None
        self._fd: int | None = None

    def _lock(self, fd: int, blocking: bool) -> None:
        import fcntl

        if self.offset is None:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
            return
        command = fcntl.F_OFD_SETLKW if blocking else fcntl.F_OFD_SETLK
        # struct flock: l_type, l_whence, l_start, l_len, l_pid (0 for OFD locks)
        request = struct.pack(_FLOCK_FORMAT, fcntl.F_WRLCK, os.SEEK_SET, self.offset, 1, 0)
        try:
            fcntl.fcntl(fd, command, request)
        except OSError as error:
            if error.errno in (errno.EAGAIN, errno.EACCES):
                raise BlockingIOError(error.errno, "locked") from None
            raise

    def acquire(self, blocking: bool = True) -> bool:
        while True:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except FileNotFoundError:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                continue
            try:
                self._lock(fd, blocking)
            except BlockingIOError:
                os.close(fd)
                return False
            except BaseException:
                os.close(fd)
                raise
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                self._fd = fd
                return True
            os.close(fd)  # the file went away while we waited: lock the new one

    def release(self) -> None:
        if self._fd is None:
            return
        os.close(self._fd)  # closing the descriptor drops the lock
        self._fd = None

    def __enter__(self) -> EntryLock:
        self.acquire()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.release()


_OFD = _ofd_locks()
_FLOCK_FORMAT = "hhxxxxqqixxxx"  # struct flock on 64-bit Linux (x86_64, aarch64)
ENTRY_LOCKS = "entries.lock"


# -- the index --------------------------------------------------------------------------------

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
        self._local = threading.local()
        self._ready_pid: int | None = None
        self._ready_lock = threading.Lock()

    # connections -------------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        import sqlite3

        conn = sqlite3.connect(self.path, timeout=60, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA busy_timeout = 60000")
        conn.execute("PRAGMA journal_mode = WAL")
        # The index can always be rebuilt from the folders, so it never waits for the disk: no
        # fsync on commits or checkpoints. A power cut may lose its latest rows (those entries
        # then wait for a rebuild to be evicted) or damage it (then it is rebuilt).
        conn.execute("PRAGMA synchronous = OFF")
        return conn

    def connection(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is not None and getattr(self._local, "pid", None) == os.getpid():
            return conn
        with self._ready_lock:
            conn = self._open()
        self._local.conn = conn
        self._local.pid = os.getpid()
        return conn

    def _open(self) -> sqlite3.Connection:
        """A connection to a usable index: created, filled from disk, or rebuilt if damaged."""
        import sqlite3

        try:
            conn = self._connect()
            if self._ready_pid == os.getpid() or self._built(conn):
                self._ready_pid = os.getpid()
                return conn
        except sqlite3.DatabaseError as error:
            if _is_busy(error):
                raise
            log.warning("the cache index %s is unreadable (%s); rebuilding it from disk", self.path, error)
            return self._recover()
        with EntryLock(self.base / LOCKS_FOLDER / "index.lock"):
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

        old = getattr(self._local, "conn", None)
        if old is not None:
            with contextlib.suppress(Exception):
                old.close()
            self._local.conn = None
        with EntryLock(self.base / LOCKS_FOLDER / "index.lock"):
            try:  # someone else may have rebuilt it already
                conn = self._connect()
                if self._built(conn) and conn.execute("PRAGMA quick_check").fetchone()[0] == "ok":
                    self._ready_pid = os.getpid()
                    return conn
                conn.close()
            except sqlite3.DatabaseError:
                pass
            for suffix in ("", "-wal", "-shm", "-journal"):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(f"{self.path}{suffix}")
            conn = self._connect()
            self._built(conn)
            self._rebuild(conn)
        self._ready_pid = os.getpid()
        return conn

    def _rebuild(self, conn: sqlite3.Connection) -> None:
        """Index every complete entry found in the context folders (their mtime is their last use)."""
        rows = []
        for context_dir in _subfolders(self.base):
            for item in os.scandir(context_dir):
                if item.name.startswith(".") or entry_guarding(item.name) is None:
                    continue
                try:
                    st = item.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue
                parent = None
                if item.is_dir(follow_symlinks=False):
                    size = _tree_size(Path(item.path))
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
            self._local.conn = conn
            self._local.pid = os.getpid()
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
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()
            self._local.conn = None


def _is_busy(error: Exception) -> bool:
    """Locked / busy is contention, not damage: never a reason to rebuild."""
    text = str(error).lower()
    return "locked" in text or "busy" in text


def _subfolders(base: Path) -> Iterator[os.DirEntry[str]]:
    if not base.is_dir():
        return
    for item in os.scandir(base):
        if item.is_dir(follow_symlinks=False) and not item.name.startswith("."):
            yield item


def _tree_size(path: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, name)).st_size
    return total


def _remove(path: Path) -> None:
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    except FileNotFoundError:
        pass


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _Recorder:
    """Writes finished downloads into the index and enforces limits, off the caller's path.

    A miss returns as soon as its file is in place; one background thread per process records
    it (many at once when misses come quickly) and evicts what the limits require. The process
    waits for it at exit; an entry whose record a kill -9 lost is only unknown to eviction until
    the index is rebuilt (``cache clear`` removes it like any other file).
    """

    def __init__(self, cache: Cache) -> None:
        self._cache = cache
        self._queue: queue.Queue[tuple[str | None, EntryRow]] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._lock = threading.Lock()

    def submit(self, context: str | None, row: EntryRow) -> None:
        if self._thread is None or self._pid != os.getpid() or not self._thread.is_alive():
            with self._lock:
                if self._thread is None or self._pid != os.getpid() or not self._thread.is_alive():
                    if self._pid != os.getpid():
                        self._queue = queue.Queue()  # a forked child starts with none of the parent's
                    self._pid = os.getpid()
                    self._thread = threading.Thread(target=self._run, name="clearml-cache-index", daemon=True)
                    self._thread.start()
                    _recorders.add(self)
        self._queue.put((context, row))

    def flush(self, timeout: float | None = None) -> None:
        if self._pid != os.getpid():
            return
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._queue.all_tasks_done:
            while self._queue.unfinished_tasks:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    log.warning("the cache index did not catch up within %s s", timeout)
                    return
                self._queue.all_tasks_done.wait(left)

    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            while True:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            try:
                counts = self._cache.index.record([row for _context, row in batch])
                contexts = {row.context: context for context, row in batch}
                for name, context in contexts.items():
                    keep = {(row.context, row.name) for _c, row in batch}
                    self._cache.enforce_limits(context, keep=keep, known=counts.get(name))
            except Exception as error:  # bookkeeping must never take a download down with it
                log.warning("could not record cache entries in %s: %s", self._cache.root, error)
            finally:
                for _ in batch:
                    self._queue.task_done()


_recorders: weakref.WeakSet[_Recorder] = weakref.WeakSet()


@atexit.register
def _flush_recorders() -> None:
    for recorder in list(_recorders):
        recorder.flush(timeout=30)


# -- the cache --------------------------------------------------------------------------------


@dataclass(frozen=True)
class CachedEntry:
    """What ``cache ls`` shows about one entry."""

    context: str
    name: str
    path: Path
    size: int
    last_access: float
    url: str | None
    kind: str  # file | archive folder

    def to_json(self) -> dict[str, Any]:
        return {
            "context": self.context,
            "name": self.name,
            "path": str(self.path),
            "size": self.size,
            "last_access": self.last_access,
            "url": self.url,
            "kind": self.kind,
        }


class Cache:
    """One cache folder; get it with :func:`get_cache`. Thread- and process-safe."""

    def __init__(self, settings: CacheSettings) -> None:
        self.settings = settings
        self.base = settings.base_dir
        self.root = self.base / CACHE_FOLDER
        """Where the cache keeps everything it writes; it looks nowhere else in ``base``."""
        self._index: CacheIndex | None = None
        self._file_limits: dict[str, int] = {}
        self._made: set[str] = set()
        self._recorder = _Recorder(self)

    # paths -------------------------------------------------------------------------------
    def folder(self, context: str | None = None) -> Path:
        """The folder of a cache context (created on first use)."""
        name = _context_folder_name(context)
        folder = self.root / name
        if name not in self._made:
            self._file_limits.setdefault(name, self.settings.default_file_limit)
            try:
                (folder / LOCKS_FOLDER).mkdir(parents=True, exist_ok=True)
            except OSError as error:
                raise CacheError(
                    f"cannot use the cache folder {folder}: {error.strerror}; set CLEARML_CACHE_DIR or "
                    "sdk.storage.cache.default_base_dir to a writable folder"
                ) from None
            self._made.add(name)
        return folder

    def entry_path(self, context: str | None, name: str) -> Path:
        return self.folder(context) / name

    def lock(self, context: str | None, name: str) -> EntryLock:
        """The lock guarding entry ``name`` (its download, its extraction, its eviction)."""
        return _entry_lock(self.folder(context), name)

    @property
    def index(self) -> CacheIndex:
        if self._index is None:
            (self.root / LOCKS_FOLDER).mkdir(parents=True, exist_ok=True)
            self._index = CacheIndex(self.root)
        return self._index

    # limits ------------------------------------------------------------------------------
    def file_limit(self, context: str | None = None) -> int:
        return self._file_limits.get(_context_folder_name(context), self.settings.default_file_limit)

    def use_context(self, context: str | None) -> None:
        """Note that this process uses ``context``: from now on its limit is only ever raised."""
        self._file_limits.setdefault(_context_folder_name(context), self.settings.default_file_limit)

    def set_file_limit(self, limit: int, context: str | None = None) -> int:
        """The number of files a context keeps; returns the limit now in force, as ClearML does.

        A context this process has not used yet takes ``limit`` as it is (0: the default); after
        that the limit only grows.
        """
        limit = int(limit)
        if limit < 0:
            raise ValueError(f"cache_file_limit must be 0 or more, not {limit}")
        name = _context_folder_name(context)
        current = self._file_limits.get(name)
        if current is None:
            current = limit or self.settings.default_file_limit
        self._file_limits[name] = max(current, limit)
        return self._file_limits[name]

    # lookups -----------------------------------------------------------------------------
    def lookup(self, path: Path) -> bool:
        """A cache hit: the entry is there (and not empty when zero-size checking is on).

        Marks it used by touching it; never opens the index.
        """
        try:
            st = os.stat(path)
        except (FileNotFoundError, NotADirectoryError):
            return False
        if self.settings.zero_file_size_check and st.st_size == 0 and not _is_dir(st.st_mode):
            return False
        with contextlib.suppress(OSError):
            os.utime(path)
        return True

    def fetch(
        self,
        context: str | None,
        name: str,
        download: Callable[[Path], object],
        *,
        url: str | None = None,
        force: bool = False,
        empty_ok: Callable[[], bool] | bool = False,
        missing: bool = False,
    ) -> Path:
        """The path of entry ``name``, downloading it with ``download(partial_path)`` on a miss.

        ``download`` writes the object's bytes at the path it is given. Concurrent callers for one
        entry share one download. ``force`` downloads again even when the entry is cached (once:
        callers that waited on someone else's forced download take its result). An empty result
        is an error unless ``empty_ok`` (or, when callable, what it returns) says the object
        really is empty. ``missing`` says the caller just looked and found no entry.
        """
        context_name = _context_folder_name(context)
        path = self.entry_path(context, name)
        if not force and not missing and self.lookup(path):
            return path
        requested = time.time()
        # the index exists before any entry is added (a rebuild from disk must not pick up
        # entries whose records are still on their way)
        self.index.connection()
        lock = self.lock(context, name)
        with lock:
            existed = path.exists()
            if existed:
                if not force:
                    if self.lookup(path):
                        return path
                else:
                    row = self.index.get(context_name, name)
                    if row is not None and row.created >= requested:
                        self.lookup(path)
                        return path
            # A download killed mid-way leaves this partial file; the next download of the entry
            # overwrites it, and ``cache clear`` sweeps the ones never asked for again.
            partial = path.parent / f"{PARTIAL_PREFIX}{name}"
            try:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(partial)  # left by a download that was killed
                download(partial)
                size = os.stat(partial).st_size
                if size == 0 and not (empty_ok() if callable(empty_ok) else empty_ok):
                    raise ZeroSizeDownloadError(
                        f"downloading {url or name} produced an empty file; pass skip_zero_size_check "
                        "if the object really is empty"
                    )
                if self.settings.fsync:
                    _fsync_file(partial)
                done = time.time()  # the entry's creation time, whenever its record is written
                row = EntryRow(context_name, name, size, done, done, None, url)
                if existed:
                    # a forced refresh: bookkeeping first, so waiters see the new version's time
                    # and archives extracted from the old one go
                    children, count, total = self.index.complete(row, replacing=True)
                    for child in children:
                        _remove(path.parent / child)
                    os.replace(partial, path)
                else:
                    os.replace(partial, path)
            except BaseException:
                _remove(partial)
                if not path.exists():
                    with contextlib.suppress(Exception):
                        self.index.remove(context_name, name)
                raise
            if existed:
                self.enforce_limits(context, keep={(context_name, name)}, known=(count, total))
        if not existed:
            # recorded (and limits enforced) by a background thread: the caller has its file now
            self._recorder.submit(context, row)
        return path

    def flush(self, timeout: float | None = 30.0) -> None:
        """Wait until this process's finished downloads are in the index and limits enforced."""
        self._recorder.flush(timeout)

    def add_folder(self, context: str | None, name: str, size: int, *, parent: str | None) -> None:
        """Record a folder created in the cache (an extracted archive)."""
        now = time.time()
        self.index.upsert(EntryRow(_context_folder_name(context), name, size, now, now, parent, None))
        self.enforce_limits(context, keep={(_context_folder_name(context), name)})

    # eviction ----------------------------------------------------------------------------
    def enforce_limits(
        self,
        context: str | None = None,
        *,
        keep: set[tuple[str, str]] | None = None,
        known: tuple[int, int] | None = None,
    ) -> int:
        """Evict least recently used entries until every limit holds; returns how many went.

        ``known`` is (entries in the context, bytes in the cache) when the caller just read them.
        """
        keep = set(keep or ())
        evicted = 0
        context_name = _context_folder_name(context)
        limit = self.file_limit(context)
        total: int | None = None
        if known is not None:
            count, total = known
        else:
            count = self.index.count(context_name)
        if count > limit:
            evicted += self._evict(context_name, lambda: self.index.count(context_name) > limit, keep)
            total = None
        settings = self.settings
        margin = settings.cleanup_margin_percent / 100.0
        if total is None and settings.max_used_bytes >= 0:
            total = self.index.total_bytes()
        if settings.max_used_bytes >= 0 and total is not None and total > settings.max_used_bytes:
            target = settings.max_used_bytes * (1.0 - margin)
            evicted += self._evict(None, lambda: self.index.total_bytes() > target, keep)
        if settings.min_free_bytes > 0 and self._free_bytes() < settings.min_free_bytes:
            target_free = settings.min_free_bytes * (1.0 + margin)
            evicted += self._evict(None, lambda: self._free_bytes() < target_free, keep)
        return evicted

    def _free_bytes(self) -> int:
        try:
            return shutil.disk_usage(self.root).free
        except OSError:
            return 1 << 62

    def _evict(self, context: str | None, over: Callable[[], bool], keep: set[tuple[str, str]]) -> int:
        evicted = 0
        skip = set(keep)
        while over():
            candidates = self.index.oldest(context, 16, skip)
            if not candidates:
                break
            for row in candidates:
                if not over():
                    break
                path = self.root / row.context / row.name
                try:
                    mtime = os.stat(path).st_mtime
                except FileNotFoundError:
                    mtime = None
                if mtime is not None and mtime > row.last_access + 0.001:
                    # used since it was indexed (a hit touches the file): move it back in line
                    self.index.touch(row.context, row.name, mtime)
                    continue
                if self._evict_entry(row):
                    evicted += 1
                else:
                    skip.add((row.context, row.name))
        return evicted

    def _evict_entry(self, row: EntryRow) -> bool:
        """Delete one entry (and what was extracted from it) unless someone holds its lock."""
        lock_name = row.parent or row.name
        lock = _entry_lock(self.root / row.context, lock_name)
        if not lock.acquire(blocking=False):
            return False
        try:
            folder = self.root / row.context
            for child in self.index.children(row.context, row.name):
                _remove(folder / child.name)
                self.index.remove(row.context, child.name)
            _remove(folder / row.name)
            if row.parent is None:
                _remove(folder / f"{PARTIAL_PREFIX}{row.name}")
            self.index.remove(row.context, row.name)
        finally:
            lock.release()
        log.debug("evicted %s/%s from the cache", row.context, row.name)
        return True

    # listing and clearing ----------------------------------------------------------------
    def entries(self, context: str | None = None) -> list[CachedEntry]:
        self.flush()
        context_name = _context_folder_name(context) if context else None
        found = []
        for row in self.index.rows(context_name):
            path = self.root / row.context / row.name
            try:
                st = os.stat(path)
            except FileNotFoundError:
                continue  # a download in progress or a row left by a killed one
            kind = "archive folder" if _is_dir(st.st_mode) else "file"
            found.append(
                CachedEntry(
                    row.context, row.name, path, row.size, max(st.st_mtime, row.last_access), row.url, kind
                )
            )
        return found

    def size(self) -> dict[str, Any]:
        """Entries and bytes per context, and the limits in force."""
        contexts: dict[str, dict[str, int]] = {}
        for entry in self.entries():
            stats = contexts.setdefault(entry.context, {"entries": 0, "bytes": 0})
            stats["entries"] += 1
            stats["bytes"] += entry.size
        return {
            "path": str(self.root),
            "entries": sum(c["entries"] for c in contexts.values()),
            "bytes": sum(c["bytes"] for c in contexts.values()),
            "contexts": contexts,
            "max_used_bytes": self.settings.max_used_bytes,
            "min_free_bytes": self.settings.min_free_bytes,
            "free_bytes": self._free_bytes(),
        }

    def clear(self, context: str | None = None) -> tuple[int, int, list[str]]:
        """Remove every entry not in use; returns (entries removed, bytes freed, names in use)."""
        self.flush()
        context_name = _context_folder_name(context) if context else None
        removed = freed = 0
        busy: list[str] = []
        rows = [row for row in self.index.rows(context_name) if row.parent is None]
        rows += [row for row in self.index.rows(context_name) if row.parent is not None]
        for row in rows:
            if self.index.get(row.context, row.name) is None:
                continue  # went with its parent
            children = self.index.children(row.context, row.name)
            if self._evict_entry(row):
                removed += 1
                freed += row.size + sum(child.size for child in children)
            else:
                busy.append(f"{row.context}/{row.name}")
        # leftovers the index does not know: partial downloads and extractions of killed
        # processes, entries whose records were lost
        folders = (
            [self.root / context_name] if context_name else [Path(d.path) for d in _subfolders(self.root)]
        )
        for folder in folders:
            if not folder.is_dir():
                continue
            for item in os.scandir(folder):
                owner = entry_guarding(item.name)
                if owner is None:
                    continue  # not a name the cache writes: someone else's file
                lock = _entry_lock(folder, owner)
                if not lock.acquire(blocking=False):
                    continue
                try:
                    size = item.stat(follow_symlinks=False).st_size if item.is_file() else 0
                    _remove(Path(item.path))
                    freed += size
                finally:
                    lock.release()
        return removed, freed, busy


def _is_dir(mode: int) -> bool:
    import stat

    return stat.S_ISDIR(mode)


# -- the process-wide cache -------------------------------------------------------------------

_current: tuple[Any, str, Cache] | None = None
_current_lock = threading.Lock()


def get_cache(config: Config | None = None) -> Cache:
    """The cache of the loaded configuration (rebuilt when clearml.conf is reloaded)."""
    global _current
    if config is None:
        from clearml_core.settings import get_config

        config = get_config()
    env = os.environ.get(CACHE_DIR_VARIABLE, "")
    current = _current
    if current is not None and current[0] is config and current[1] == env:
        return current[2]
    with _current_lock:
        current = _current
        if current is not None and current[0] is config and current[1] == env:
            return current[2]
        settings = CacheSettings.from_config(config)
        cache = Cache(settings)
        if current is not None and current[2].settings.base_dir == settings.base_dir:
            cache._file_limits.update(current[2]._file_limits)
        _current = (config, env, cache)
        return cache


def reset_cache() -> None:
    """Forget the process-wide cache object (tests)."""
    global _current
    with _current_lock:
        if _current is not None and _current[2]._index is not None:
            _current[2]._index.close()
        _current = None


__all__ = [
    "Cache",
    "CacheError",
    "CacheIndex",
    "CacheSettings",
    "CachedEntry",
    "EntryLock",
    "ZeroSizeDownloadError",
    "archive_folder_name",
    "cache_base_dir",
    "entry_name",
    "get_cache",
    "reset_cache",
]
