"""What a worker reports about the tasks it runs, kept while Redis is away and delivered once back.

A task keeps running when the control plane goes away; its log batches, its record updates and
its final status must still arrive, in order, and each exactly once. Every such report goes
through the :class:`Outbox`: while nothing waits, it is delivered at once (the common case); when
Redis cannot be reached it waits in the outbox, and a background thread delivers the queue in order
as soon as Redis answers again.

Exactly once: each report has a number, increasing in delivery order, and the store records per
task the highest number of this writer it applied (the task's ``w:WRITER`` field). A report whose
reply was lost with the connection is delivered again on reconnection and recognised as done.

In order per task, side by side across tasks: one task's reports are delivered one at a time (the
number check above would take a later one arriving first as a replay of the earlier), while those
of different tasks, the many a server process or a services-mode agent writes at once, do not wait
for each other's round trips to Redis.

Bounded: log batches beyond ``max_lines`` pending lines are dropped oldest first (a warning says
how many); status and record updates are never dropped.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from clearml_core_controlplane_redis.link import Link, RedisUnreachableError

log = logging.getLogger("clearml_core.controlplane.redis")


@dataclass
class Report:
    """One write about a task; ``deliver(number)`` applies it (idempotently for that number)."""

    task_id: str
    what: str
    deliver: Callable[[int], Any]
    lines: int = 0
    """Log lines it carries (0 for record updates): what counts against the bound."""
    number: int = 0


class Outbox:
    """Reports delivered in order, held while the link is down (see the module docstring)."""

    def __init__(self, link: Link, *, max_lines: int) -> None:
        self._link = link
        self._max_lines = max_lines
        self._pending: collections.deque[Report] = collections.deque()
        self._pending_lines = 0
        self._numbers = 0
        self._lock = threading.Lock()
        self._task_locks: dict[str, tuple[threading.Lock, list[int]]] = {}
        self._task_locks_lock = threading.Lock()
        self._wake = threading.Event()
        self._flusher: threading.Thread | None = None
        self.dropped_lines = 0

    @property
    def pending(self) -> int:
        return len(self._pending)

    def pending_tasks(self) -> list[str]:
        with self._lock:
            return list(dict.fromkeys(report.task_id for report in self._pending))

    def submit(self, report: Report) -> tuple[bool, Any]:
        """Deliver now when nothing waits, else queue; returns (delivered, its result)."""
        with self._in_order(report.task_id):
            with self._lock:
                self._numbers += 1
                report.number = self._numbers
                if self._pending:
                    self._hold(report)
                    return False, None
            try:
                return True, report.deliver(report.number)
            except RedisUnreachableError:
                with self._lock:
                    self._hold(report)
        return False, None

    @contextlib.contextmanager
    def _in_order(self, task_id: str) -> Iterator[None]:
        """Hold ``task_id``'s own lock; the lock is forgotten when no one holds or waits for it."""
        with self._task_locks_lock:
            lock, users = self._task_locks.setdefault(task_id, (threading.Lock(), [0]))
            users[0] += 1
        try:
            with lock:
                yield
        finally:
            with self._task_locks_lock:
                users[0] -= 1
                if not users[0]:
                    del self._task_locks[task_id]

    def _hold(self, report: Report) -> None:
        self._pending.append(report)
        self._pending_lines += report.lines
        excess = self._pending_lines - self._max_lines
        if excess > 0:
            self._drop_logs(excess)
        if self._flusher is None or not self._flusher.is_alive():
            self._flusher = threading.Thread(
                target=self._flush_loop, name="clearml-redis-outbox", daemon=True
            )
            self._flusher.start()

    def _drop_logs(self, excess: int) -> None:
        kept: collections.deque[Report] = collections.deque()
        dropped = 0
        for report in self._pending:
            if dropped < excess and report.lines:
                dropped += report.lines
                continue
            kept.append(report)
        self._pending = kept
        self._pending_lines -= dropped
        if dropped:
            if not self.dropped_lines:
                log.warning(
                    "the Redis control plane at %s is still away and more than %d log lines wait for it: "
                    "dropping the oldest (agent.redis.buffer_max_lines; the task.log files keep them all)",
                    self._link.where,
                    self._max_lines,
                )
            self.dropped_lines += dropped

    def _deliver_head(self) -> bool:
        """Try the oldest report; True when the outbox may go on (delivered or given up on)."""
        report = self._pending[0]
        try:
            report.deliver(report.number)
        except RedisUnreachableError:
            return False
        except Exception as error:
            # the store refused it (the watchdog gave the task away meanwhile, …): nothing to retry
            log.warning("task %s: %s was not recorded: %s", report.task_id, report.what, error)
        self._pending.popleft()
        self._pending_lines -= report.lines
        return True

    def _flush_loop(self) -> None:
        while True:
            with self._lock:
                while self._pending and self._deliver_head():
                    pass
                if not self._pending:
                    self._flusher = None
                    return
            self._wake.wait(max(self._link.retry_in(), 0.05))
            self._wake.clear()

    def flush(self, timeout: float) -> bool:
        """Deliver what waits, for at most ``timeout`` seconds; True when nothing is left."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                while self._pending and self._deliver_head():
                    pass
                if not self._pending:
                    return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            time.sleep(min(remaining, max(self._link.retry_in(), 0.05)))


__all__ = ["Outbox", "Report"]
