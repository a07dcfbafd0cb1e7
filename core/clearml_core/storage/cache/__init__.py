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

The modules, one idea each: :mod:`.names` (what entries, partial files and context folders are
called), :mod:`.settings` (``sdk.storage.cache.*``), :mod:`.locks` (each entry's lock),
:mod:`.index` (the SQLite bookkeeping), :mod:`.recorder` (the background thread that writes it),
:mod:`.eviction` (the limits and what goes first), :mod:`.cache` (:class:`Cache` itself and the
process-wide one).
"""

from __future__ import annotations

from clearml_core.storage.cache.cache import Cache, CachedEntry, get_cache, reset_cache
from clearml_core.storage.cache.errors import CacheError, ZeroSizeDownloadError
from clearml_core.storage.cache.index import CacheIndex, EntryRow
from clearml_core.storage.cache.locks import ENTRY_LOCKS, LOCK_STRIPES, EntryLock
from clearml_core.storage.cache.names import (
    ARCHIVE_MARK,
    CACHE_FOLDER,
    DEFAULT_CONTEXT,
    INDEX_NAME,
    LOCKS_FOLDER,
    PARTIAL_PREFIX,
    archive_folder_name,
    entry_guarding,
    entry_name,
)
from clearml_core.storage.cache.settings import (
    CACHE_DIR_VARIABLE,
    DEFAULT_BASE_DIR,
    DEFAULT_FILE_LIMIT,
    CacheSettings,
    cache_base_dir,
)

__all__ = [
    "ARCHIVE_MARK",
    "CACHE_DIR_VARIABLE",
    "CACHE_FOLDER",
    "DEFAULT_BASE_DIR",
    "DEFAULT_CONTEXT",
    "DEFAULT_FILE_LIMIT",
    "ENTRY_LOCKS",
    "INDEX_NAME",
    "LOCKS_FOLDER",
    "LOCK_STRIPES",
    "PARTIAL_PREFIX",
    "Cache",
    "CacheError",
    "CacheIndex",
    "CacheSettings",
    "CachedEntry",
    "EntryLock",
    "EntryRow",
    "ZeroSizeDownloadError",
    "archive_folder_name",
    "cache_base_dir",
    "entry_guarding",
    "entry_name",
    "get_cache",
    "reset_cache",
]
