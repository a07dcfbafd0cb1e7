"""The cache itself: hits, misses that download once, folders of extracted archives, ``cache ls|size|clear``.

See the package's docstring for why it is safe.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from clearml_core.storage.cache import eviction
from clearml_core.storage.cache.errors import CacheError, ZeroSizeDownloadError
from clearml_core.storage.cache.files import fsync_file, is_dir_mode, remove, subfolders
from clearml_core.storage.cache.index import CacheIndex, EntryRow
from clearml_core.storage.cache.locks import EntryLock, entry_lock
from clearml_core.storage.cache.names import (
    CACHE_FOLDER,
    LOCKS_FOLDER,
    PARTIAL_PREFIX,
    context_folder_name,
    entry_guarding,
)
from clearml_core.storage.cache.recorder import Recorder
from clearml_core.storage.cache.settings import CACHE_DIR_VARIABLE, CacheSettings

if TYPE_CHECKING:
    from clearml_core.config import Config


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
        self._recorder = Recorder(self)

    # paths -------------------------------------------------------------------------------
    def folder(self, context: str | None = None) -> Path:
        """The folder of a cache context (created on first use)."""
        name = context_folder_name(context)
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
        return entry_lock(self.folder(context), name)

    @property
    def index(self) -> CacheIndex:
        if self._index is None:
            (self.root / LOCKS_FOLDER).mkdir(parents=True, exist_ok=True)
            self._index = CacheIndex(self.root)
        return self._index

    # limits ------------------------------------------------------------------------------
    def file_limit(self, context: str | None = None) -> int:
        return self._file_limits.get(context_folder_name(context), self.settings.default_file_limit)

    def use_context(self, context: str | None) -> None:
        """Note that this process uses ``context``: from now on its limit is only ever raised."""
        self._file_limits.setdefault(context_folder_name(context), self.settings.default_file_limit)

    def set_file_limit(self, limit: int, context: str | None = None) -> int:
        """The number of files a context keeps; returns the limit now in force, as ClearML does.

        A context this process has not used yet takes ``limit`` as it is (0: the default); after
        that the limit only grows.
        """
        limit = int(limit)
        if limit < 0:
            raise ValueError(f"cache_file_limit must be 0 or more, not {limit}")
        name = context_folder_name(context)
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
        if self.settings.zero_file_size_check and st.st_size == 0 and not is_dir_mode(st.st_mode):
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
        context_name = context_folder_name(context)
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
                    fsync_file(partial)
                done = time.time()  # the entry's creation time, whenever its record is written
                row = EntryRow(context_name, name, size, done, done, None, url)
                if existed:
                    # a forced refresh: bookkeeping first, so waiters see the new version's time
                    # and archives extracted from the old one go
                    children, count, total = self.index.complete(row, replacing=True)
                    for child in children:
                        remove(path.parent / child)
                    os.replace(partial, path)
                else:
                    os.replace(partial, path)
            except BaseException:
                remove(partial)
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
        self.index.upsert(EntryRow(context_folder_name(context), name, size, now, now, parent, None))
        self.enforce_limits(context, keep={(context_folder_name(context), name)})

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
        return eviction.enforce_limits(self, context, keep=keep, known=known)

    # listing and clearing ----------------------------------------------------------------
    def entries(self, context: str | None = None) -> list[CachedEntry]:
        self.flush()
        context_name = context_folder_name(context) if context else None
        found = []
        for row in self.index.rows(context_name):
            path = self.root / row.context / row.name
            try:
                st = os.stat(path)
            except FileNotFoundError:
                continue  # a download in progress or a row left by a killed one
            kind = "archive folder" if is_dir_mode(st.st_mode) else "file"
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
            "free_bytes": eviction.free_bytes(self.root),
        }

    def clear(self, context: str | None = None) -> tuple[int, int, list[str]]:
        """Remove every entry not in use; returns (entries removed, bytes freed, names in use)."""
        self.flush()
        context_name = context_folder_name(context) if context else None
        removed = freed = 0
        busy: list[str] = []
        rows = [row for row in self.index.rows(context_name) if row.parent is None]
        rows += [row for row in self.index.rows(context_name) if row.parent is not None]
        for row in rows:
            if self.index.get(row.context, row.name) is None:
                continue  # went with its parent
            children = self.index.children(row.context, row.name)
            if eviction.evict_entry(self, row):
                removed += 1
                freed += row.size + sum(child.size for child in children)
            else:
                busy.append(f"{row.context}/{row.name}")
        # leftovers the index does not know: partial downloads and extractions of killed
        # processes, entries whose records were lost
        folders = (
            [self.root / context_name] if context_name else [Path(d.path) for d in subfolders(self.root)]
        )
        for folder in folders:
            if not folder.is_dir():
                continue
            for item in os.scandir(folder):
                owner = entry_guarding(item.name)
                if owner is None:
                    continue  # not a name the cache writes: someone else's file
                lock = entry_lock(folder, owner)
                if not lock.acquire(blocking=False):
                    continue
                try:
                    size = item.stat(follow_symlinks=False).st_size if item.is_file() else 0
                    remove(Path(item.path))
                    freed += size
                finally:
                    lock.release()
        return removed, freed, busy


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


__all__ = ["Cache", "CachedEntry", "get_cache", "reset_cache"]
