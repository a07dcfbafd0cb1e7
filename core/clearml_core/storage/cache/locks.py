"""Each entry's lock: one byte of the context's ``entries.lock`` (Linux), else one of 4,096 files.

The lock guards an entry's download, its extraction and its eviction. On Linux it is an
open-file-description byte-range lock on the byte at a 60-bit hash of the entry's name, so a
miss never creates a lock file; elsewhere entries hash onto :data:`LOCK_STRIPES` lock files.
"""

from __future__ import annotations

import errno
import hashlib
import os
import struct
import sys
from pathlib import Path

from clearml_core.storage.cache.names import LOCKS_FOLDER

LOCK_STRIPES = 4096
ENTRY_LOCKS = "entries.lock"


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

__all__ = ["ENTRY_LOCKS", "LOCK_STRIPES", "EntryLock", "entry_lock"]
