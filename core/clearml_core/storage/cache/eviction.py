"""What goes when the cache is over a limit: least recently used first, never an entry in use.

Limits: the per-context file count (``set_cache_file_limit``, default
``sdk.storage.cache.default_cache_manager_size``), the total size
(``sdk.storage.cache.size.max_used_bytes``, -1 for none) and the free disk space to keep
(``min_free_bytes``); a cleanup frees ``cleanup_margin_percent`` more than strictly needed.
Candidates come from the index, oldest first; each one's modification time is checked again (a
hit since it was indexed moves it back in line), and an entry another process holds the lock of
is skipped.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from clearml_core.storage.cache.files import remove
from clearml_core.storage.cache.index import CacheIndex, EntryRow
from clearml_core.storage.cache.locks import entry_lock
from clearml_core.storage.cache.names import PARTIAL_PREFIX, context_folder_name
from clearml_core.storage.cache.settings import CacheSettings

log = logging.getLogger("clearml_core.storage.cache")


class Cache(Protocol):
    """What eviction needs of a cache (the Cache class of this package; a protocol keeps the
    import one way)."""

    root: Path
    settings: CacheSettings

    @property
    def index(self) -> CacheIndex: ...

    def file_limit(self, context: str | None = None) -> int: ...


def enforce_limits(
    cache: Cache,
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
    index = cache.index
    context_name = context_folder_name(context)
    limit = cache.file_limit(context)
    total: int | None = None
    if known is not None:
        count, total = known
    else:
        count = index.count(context_name)
    if count > limit:
        evicted += evict_while(cache, context_name, lambda: index.count(context_name) > limit, keep)
        total = None
    settings = cache.settings
    margin = settings.cleanup_margin_percent / 100.0
    if total is None and settings.max_used_bytes >= 0:
        total = index.total_bytes()
    if settings.max_used_bytes >= 0 and total is not None and total > settings.max_used_bytes:
        target = settings.max_used_bytes * (1.0 - margin)
        evicted += evict_while(cache, None, lambda: index.total_bytes() > target, keep)
    if settings.min_free_bytes > 0 and free_bytes(cache.root) < settings.min_free_bytes:
        target_free = settings.min_free_bytes * (1.0 + margin)
        evicted += evict_while(cache, None, lambda: free_bytes(cache.root) < target_free, keep)
    return evicted


def free_bytes(root: Path) -> int:
    """Free space on the cache's disk (plenty, when it cannot be told)."""
    try:
        return shutil.disk_usage(root).free
    except OSError:
        return 1 << 62


def evict_while(
    cache: Cache, context: str | None, over: Callable[[], bool], keep: set[tuple[str, str]]
) -> int:
    """Evict the oldest entries (of ``context``, or of any) while ``over()``; returns how many went."""
    evicted = 0
    skip = set(keep)
    index = cache.index
    while over():
        candidates = index.oldest(context, 16, skip)
        if not candidates:
            break
        for row in candidates:
            if not over():
                break
            path = cache.root / row.context / row.name
            try:
                mtime = os.stat(path).st_mtime
            except FileNotFoundError:
                mtime = None
            if mtime is not None and mtime > row.last_access + 0.001:
                # used since it was indexed (a hit touches the file): move it back in line
                index.touch(row.context, row.name, mtime)
                continue
            if evict_entry(cache, row):
                evicted += 1
            else:
                skip.add((row.context, row.name))
    return evicted


def evict_entry(cache: Cache, row: EntryRow) -> bool:
    """Delete one entry (and what was extracted from it) unless someone holds its lock."""
    lock_name = row.parent or row.name
    folder = cache.root / row.context
    lock = entry_lock(folder, lock_name)
    if not lock.acquire(blocking=False):
        return False
    index = cache.index
    try:
        for child in index.children(row.context, row.name):
            remove(folder / child.name)
            index.remove(row.context, child.name)
        remove(folder / row.name)
        if row.parent is None:
            remove(folder / f"{PARTIAL_PREFIX}{row.name}")
        index.remove(row.context, row.name)
    finally:
        lock.release()
    log.debug("evicted %s/%s from the cache", row.context, row.name)
    return True


__all__ = ["enforce_limits", "evict_entry", "evict_while", "free_bytes"]
