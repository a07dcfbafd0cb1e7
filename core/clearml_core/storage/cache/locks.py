"""Each entry's lock: one byte of the context's ``entries.lock`` (Linux), else one of 4,096 files.

The lock guards an entry's download, its extraction and its eviction. On Linux it is an
open-file-description byte-range lock on the byte at a 60-bit hash of the entry's name, so a
miss never creates a lock file; elsewhere entries hash onto :data:`LOCK_STRIPES` lock files. The
locks themselves are :mod:`clearml_core.filelocks`'.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from clearml_core.filelocks import ByteRangeLock, ExclusiveFileLock, byte_range_locks
from clearml_core.storage.cache.names import LOCKS_FOLDER

LOCK_STRIPES = 4096
ENTRY_LOCKS = "entries.lock"

_ofd_locks = byte_range_locks
_OFD = _ofd_locks()  # off: stripe files, as where byte-range locks are missing (the tests try both)


def _digest(name: str) -> int:
    return int(
        hashlib.md5(name.encode("utf-8", "surrogateescape"), usedforsecurity=False).hexdigest()[:15], 16
    )


def _stripe(name: str) -> str:
    """Without byte-range locks: one of ``LOCK_STRIPES`` lock files, picked by a hash of the name."""
    return f"{_digest(name) % LOCK_STRIPES:03x}.lock"


def entry_lock(folder: Path, name: str) -> EntryLock:
    """Entry ``name``'s lock in a context folder: a byte of ``entries.lock`` (Linux) or a stripe file."""
    if _OFD:
        return EntryLock(folder / LOCKS_FOLDER / ENTRY_LOCKS, offset=_digest(name))
    return EntryLock(folder / LOCKS_FOLDER / _stripe(name))


class EntryLock:
    """An exclusive lock shared by processes and threads: a whole file, or one byte of it.

    With ``offset`` (and on Linux) it is the byte at ``offset`` of a shared lock file
    (:class:`~clearml_core.filelocks.ByteRangeLock`), so every entry of a context has its own lock
    in one file that is never re-created; otherwise the whole file
    (:class:`~clearml_core.filelocks.ExclusiveFileLock`). Two threads of one process exclude each
    other as two processes do, a process that dies releases what it held, and a lock file deleted
    meanwhile (someone cleared the cache) is never held by two holders at once.
    """

    def __init__(self, path: Path, offset: int | None = None) -> None:
        self.path = path
        self.offset = offset if offset is not None and _OFD else None
        self._lock = ExclusiveFileLock(path) if self.offset is None else ByteRangeLock(path, self.offset)

    def acquire(self, blocking: bool = True) -> bool:
        return self._lock.acquire(blocking)

    def release(self) -> None:
        self._lock.release()

    def __enter__(self) -> EntryLock:
        self.acquire()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.release()


__all__ = ["ENTRY_LOCKS", "LOCK_STRIPES", "EntryLock", "entry_lock"]
