"""File locks that processes and threads take on shared folders: the one module that takes them.

The storage cache, the VCS cache and the environment cache need three kinds:

* :class:`ExclusiveFileLock` — one holder at a time on a whole file: :mod:`filelock`'s
  ``FileLock`` (``flock`` on POSIX). The storage cache takes it to rebuild its index and, where
  byte-range locks are missing, for its lock stripes.
* :class:`SharedFileLock` — ``flock`` on a whole file, shared *or* exclusive, held by a descriptor
  the holder can see. filelock has no shared mode (its ``ReadWriteLock`` keeps its state in a
  SQLite file, not in a descriptor), and both caches of the agent need one: a task holds its
  environment shared while it runs, and that descriptor is passed to installer processes so the
  lock lives as long as they do; a daemon reads a git mirror shared while another fetches into it
  exclusively. Waits poll, so a stop request can interrupt them.
* :class:`ByteRangeLock` — one byte of a shared file, an open-file-description lock (Linux
  3.15+). filelock locks whole files only, and the storage cache gives every entry a byte of one
  file so that a miss creates no lock file. Python's ``fcntl.lockf`` takes POSIX record locks,
  which belong to the process (two threads would not exclude each other, and closing any
  descriptor of the file would drop them all), so the ``struct flock`` is packed here.

Every lock belongs to an open file description: two threads of a process exclude each other as
two processes do, and a process that dies releases what it held. Once held, each checks that the
file it locked is still the one at the path (a cache cleared or an entry evicted while someone
waited), so two holders never lock two different files of one name.
"""

from __future__ import annotations

import contextlib
import errno
import os
import struct
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

POLL_SEC = 0.05
"""How often a wait for a shared-or-exclusive lock looks again (and asks whether to stop)."""


def _same_file(fd: int, path: Path) -> bool:
    try:
        current = os.stat(path)
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return (current.st_ino, current.st_dev) == (mine.st_ino, mine.st_dev)


def _open_locked(path: Path, take: Callable[[int], bool]) -> int | None:
    """A descriptor of ``path`` that ``take(fd)`` locked, or None when ``take`` found it taken.

    The file is created (with its folder) when missing; a file deleted or replaced while ``take``
    waited is let go and the one now at the path is locked instead.
    """
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except FileNotFoundError:
            path.parent.mkdir(parents=True, exist_ok=True)
            continue
        try:
            if not take(fd):
                os.close(fd)
                return None
            if _same_file(fd, path):
                return fd
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)  # the file went away while we waited: lock the new one


class ExclusiveFileLock:
    """An exclusive lock on a whole file, through :mod:`filelock` (imported on first use)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._held: Any = None

    def acquire(self, blocking: bool = True) -> bool:
        """Take the lock (waiting for it unless ``blocking`` is False); False when it is taken."""
        import filelock

        lock = filelock.FileLock(self.path, thread_local=False)
        try:
            lock.acquire(blocking=blocking)
        except filelock.Timeout:
            return False
        self._held = lock
        return True

    def release(self) -> None:
        held, self._held = self._held, None
        if held is not None:
            held.release()

    def __enter__(self) -> ExclusiveFileLock:
        self.acquire()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.release()


class SharedFileLock:
    """``flock`` on a whole file, shared or exclusive, held by :attr:`fd` until :meth:`release`.

    Waits poll every :data:`POLL_SEC` and call ``check_stop`` in between, which raises to give up.
    """

    def __init__(self, path: Path, check_stop: Callable[[], None] | None = None) -> None:
        self.path = Path(path)
        self._check_stop = check_stop
        self._fd: int | None = None

    @property
    def fd(self) -> int | None:
        """The descriptor holding the lock (hand it to a child process to keep the lock with it)."""
        return self._fd

    def acquire(self, *, exclusive: bool, blocking: bool = True) -> bool:
        """Take the lock shared or exclusive; False when ``blocking`` is False and it is taken."""
        import fcntl

        mode = fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH

        def take(fd: int) -> bool:
            while True:
                try:
                    fcntl.flock(fd, mode | fcntl.LOCK_NB)
                    return True
                except BlockingIOError:
                    if not blocking:
                        return False
                    if self._check_stop is not None:
                        self._check_stop()
                    time.sleep(POLL_SEC)

        self._fd = _open_locked(self.path, take)
        return self._fd is not None

    def share(self) -> None:
        """Turn the exclusive lock held into a shared one. Not atomic (``flock`` converts by
        letting go first), so whatever the exclusive lock protected must be checked again."""
        import fcntl

        assert self._fd is not None
        fcntl.flock(self._fd, fcntl.LOCK_SH)

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        import fcntl

        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_UN)  # a descriptor a child inherited keeps no lock
        os.close(fd)

    @contextlib.contextmanager
    def hold(self, *, exclusive: bool) -> Iterator[SharedFileLock]:
        """The lock, held for the ``with`` block."""
        self.acquire(exclusive=exclusive)
        try:
            yield self
        finally:
            self.release()


def byte_range_locks() -> bool:
    """Whether this system has open-file-description byte-range locks (Linux 3.15+)."""
    import fcntl

    return hasattr(fcntl, "F_OFD_SETLKW") and sys.platform.startswith("linux")


_FLOCK_FORMAT = "hhxxxxqqixxxx"  # struct flock on 64-bit Linux (x86_64, aarch64)


class ByteRangeLock:
    """An exclusive lock on the byte at ``offset`` of a shared file (see :func:`byte_range_locks`)."""

    def __init__(self, path: Path, offset: int) -> None:
        self.path = Path(path)
        self.offset = offset
        self._fd: int | None = None

    def acquire(self, blocking: bool = True) -> bool:
        """Take the lock (waiting for it unless ``blocking`` is False); False when it is taken."""
        import fcntl

        command = fcntl.F_OFD_SETLKW if blocking else fcntl.F_OFD_SETLK
        # struct flock: l_type, l_whence, l_start, l_len, l_pid (0 for OFD locks)
        request = struct.pack(_FLOCK_FORMAT, fcntl.F_WRLCK, os.SEEK_SET, self.offset, 1, 0)

        def take(fd: int) -> bool:
            try:
                fcntl.fcntl(fd, command, request)
            except OSError as error:
                if error.errno in (errno.EAGAIN, errno.EACCES):
                    return False
                raise
            return True

        self._fd = _open_locked(self.path, take)
        return self._fd is not None

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # closing the descriptor drops the lock

    def __enter__(self) -> ByteRangeLock:
        self.acquire()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.release()


__all__ = ["POLL_SEC", "ByteRangeLock", "ExclusiveFileLock", "SharedFileLock", "byte_range_locks"]
