"""The background thread that writes finished downloads into the index and enforces the limits."""

from __future__ import annotations

import atexit
import logging
import os
import queue
import threading
import time
import weakref
from pathlib import Path
from typing import Protocol

from clearml_core.storage.cache.index import CacheIndex, EntryRow


class Cache(Protocol):
    """What the recorder needs of a cache (the Cache class of this package; a protocol keeps the
    import one way)."""

    root: Path

    @property
    def index(self) -> CacheIndex: ...

    def enforce_limits(
        self,
        context: str | None = None,
        *,
        keep: set[tuple[str, str]] | None = None,
        known: tuple[int, int] | None = None,
    ) -> int: ...


log = logging.getLogger("clearml_core.storage.cache")


class Recorder:
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


_recorders: weakref.WeakSet[Recorder] = weakref.WeakSet()


@atexit.register
def _flush_recorders() -> None:
    for recorder in list(_recorders):
        recorder.flush(timeout=30)


__all__ = ["Recorder"]
