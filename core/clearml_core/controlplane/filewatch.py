"""Waiting for another process to write a file, at no cost while nothing happens.

An idle agent on SQLite, and a server's long poll over it, wait for any process to commit to the
database file. On Linux one thread per watched file blocks on inotify, and only while someone
waits (it lingers :data:`LINGER_SEC` after the last one), counting the writes; waiters sleep on a
condition until the count moves. Where inotify is not there (other systems, the per-user limit of
instances reached, a folder that goes away) the waiters stat the files every :data:`PROBE_SEC`
instead, which costs a wakeup each time.
"""

from __future__ import annotations

import ctypes
import logging
import os
import select
import struct
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from clearml_core.controlplane.rules import pause
from clearml_core.forks import reset_in_forked_child

log = logging.getLogger(__name__)

PROBE_SEC = 0.05
"""How often a waiter stats the files where inotify is not there."""

CANCEL_CHECK_SEC = 0.5
"""How often a waiter looks at its cancel event while it sleeps on inotify."""

LINGER_SEC = 2.0
"""How long the inotify thread stays after the last waiter left (the next one often comes soon)."""

_IN_MODIFY, _IN_MOVED_TO, _IN_CREATE, _IN_DELETE = 0x2, 0x80, 0x100, 0x200
_IN_Q_OVERFLOW, _IN_IGNORED = 0x4000, 0x8000
_IN_NONBLOCK, _IN_CLOEXEC = os.O_NONBLOCK, os.O_CLOEXEC
_EVENT = struct.Struct("iIII")


def _stat(files: Sequence[Path]) -> tuple[tuple[int, int, int] | None, ...]:
    marker: list[tuple[int, int, int] | None] = []
    for file in files:
        try:
            stat = os.stat(file)
            marker.append((stat.st_ino, stat.st_size, stat.st_mtime_ns))
        except OSError:
            marker.append(None)
    return tuple(marker)


class FileChanges:
    """Writes to ``files`` (all in one folder) as a count that waiters wait on::

    with changes.watching() as seen:
        ...  # look at the files; then, until something is found:
        seen = changes.wait(seen, timeout, cancel)
    """

    def __init__(self, files: Sequence[Path]) -> None:
        self.files = [Path(file) for file in files]
        self._names = {os.fsencode(file.name) for file in self.files}
        self._changed = threading.Condition(threading.Lock())
        self._count = 0
        self._waiters = 0
        self._marker = _stat(self.files)
        self._inotify: _Inotify | None = None
        self._inotify_usable = sys.platform.startswith("linux")
        reset_in_forked_child(self, FileChanges._forget_after_fork)

    @property
    def uses_inotify(self) -> bool:
        with self._changed:
            return self._inotify is not None

    @contextmanager
    def watching(self) -> Iterator[int]:
        """Watch while the block runs; yields the count to pass to :meth:`wait` (taken before the
        caller looks at the files, so no write after that look is missed)."""
        with self._changed:
            self._waiters += 1
            if self._inotify is None and self._inotify_usable:
                try:
                    self._inotify = _Inotify(self)
                except OSError as error:
                    log.debug("no inotify for %s (%s): the waiters stat it", self.files[0], error)
                    self._inotify_usable = False
            seen = self._probe() if self._inotify is None else self._count
        try:
            yield seen
        finally:
            with self._changed:
                self._waiters -= 1

    def wait(self, seen: int, timeout: float, cancel: threading.Event | None = None) -> int:
        """Block until the count is no longer ``seen``, ``timeout`` seconds passed or ``cancel``
        is set; the count then."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while self._count == seen:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or (cancel is not None and cancel.is_set()):
                    break
                if self._inotify is not None:
                    self._changed.wait(min(remaining, CANCEL_CHECK_SEC) if cancel is not None else remaining)
                    continue
                self._changed.release()
                try:
                    cancelled = pause(min(remaining, PROBE_SEC), cancel)
                finally:
                    self._changed.acquire()
                if cancelled:
                    break
                self._probe()
            return self._count

    def close(self) -> None:
        with self._changed:
            inotify, self._inotify = self._inotify, None
            self._inotify_usable = False
        if inotify is not None:
            inotify.stop()

    def _forget_after_fork(self) -> None:
        """In a forked child: the parent's inotify thread is not there, and its lock may have
        been held at the fork."""
        self._changed = threading.Condition(threading.Lock())
        self._inotify = None
        self._waiters = 0

    def _probe(self) -> int:
        """Stat the files (the lock held); a different answer than last time is a change."""
        marker = _stat(self.files)
        if marker != self._marker:
            self._marker = marker
            self._count += 1
        return self._count

    def _bump(self) -> None:
        with self._changed:
            self._count += 1
            self._changed.notify_all()

    def _ended(self, inotify: _Inotify, failed: bool) -> bool:
        """The inotify thread asks to end: yes when it failed, or when no one waits."""
        with self._changed:
            if not failed and self._waiters:
                return False
            if self._inotify is inotify:
                self._inotify = None
            if failed:
                self._inotify_usable = False
                self._marker = _stat(self.files)
                self._count += 1  # the waiters look once more, then stat from here on
                self._changed.notify_all()
            return True


class _Inotify:
    """One inotify instance on the folder of a :class:`FileChanges` and the thread that reads it."""

    def __init__(self, owner: FileChanges) -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        fd = libc.inotify_init1(_IN_NONBLOCK | _IN_CLOEXEC)
        if fd < 0:
            raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
        folder = os.fsencode(owner.files[0].parent)
        if libc.inotify_add_watch(fd, folder, _IN_MODIFY | _IN_MOVED_TO | _IN_CREATE | _IN_DELETE) < 0:
            error = ctypes.get_errno()
            os.close(fd)
            raise OSError(error, os.strerror(error))
        self.owner, self.fd = owner, fd
        self._wake_read, self._wake_write = os.pipe()
        self._closing = threading.Lock()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="sqlite-file-watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        with self._closing:  # the thread may have ended by itself and closed the pipe
            if not self._closed:
                os.write(self._wake_write, b"x")
        self._thread.join(5)

    def _run(self) -> None:
        failed = False
        try:
            while True:
                ready, _, _ = select.select([self.fd, self._wake_read], [], [], LINGER_SEC)
                if self._wake_read in ready:
                    return
                if self.fd in ready:
                    mask = self._read()
                    if mask & _IN_IGNORED:  # the folder is gone
                        failed = True
                    if failed or mask:
                        self.owner._bump()
                if (failed or not ready) and self.owner._ended(self, failed):
                    return
        except OSError as error:
            log.debug("inotify on %s failed (%s): the waiters stat it", self.owner.files[0], error)
            self.owner._ended(self, True)
        finally:
            with self._closing:
                self._closed = True
                for fd in (self.fd, self._wake_read, self._wake_write):
                    os.close(fd)

    def _read(self) -> int:
        """The events waiting; the OR of the masks of those about the watched files."""
        try:
            data = os.read(self.fd, 64 * 1024)
        except BlockingIOError:
            return 0
        mask, offset = 0, 0
        while offset + _EVENT.size <= len(data):
            _, event, _, length = _EVENT.unpack_from(data, offset)
            name = data[offset + _EVENT.size : offset + _EVENT.size + length].rstrip(b"\0")
            offset += _EVENT.size + length
            if event & (_IN_Q_OVERFLOW | _IN_IGNORED) or name in self.owner._names:
                mask |= event
        return mask


__all__ = ["CANCEL_CHECK_SEC", "LINGER_SEC", "PROBE_SEC", "FileChanges"]
