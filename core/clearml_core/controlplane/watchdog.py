"""The non-responsive task watchdog, as ClearML's server runs it.

A task ``in_progress`` whose worker has given no sign of life for ``agent.watchdog.threshold_sec``
(default 7200 s) is marked ``failed`` with a reason, or put back at the head of its queue when
``agent.watchdog.requeue`` is true. (The ClearML API server marks them ``stopped`` instead, as
ClearML server does: :attr:`WatchdogSettings.final_status`.) A sign of life is the worker's heartbeat, or the task's own
``last_update`` (every log batch counts), whichever is later, so a long task that keeps printing
while its worker is busy is never killed.

There is no server to run it, so the daemons do: :meth:`Watchdog.maybe_check` runs a check once
``agent.watchdog.watch_interval_sec`` (default 900 s) has passed since the last one, when the
store's watchdog lease (:meth:`~clearml_core.controlplane.ControlPlane.claim_lease`) is this
process's: a store shared by many machines elects one daemon, the embedded store lets every daemon
check. Several checking at once stays harmless: each change is conditional on the task still being
run by the silent worker, and a task someone else already handled is skipped. It works through the
:class:`~clearml_core.controlplane.ControlPlane` protocol only, so every store gets it.

:func:`recover_worker_tasks` serves a daemon that starts again under the id of one that died
(``kill -9``): the tasks the old process left ``in_progress`` are handled at once rather than after
the threshold.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from clearml_core.controlplane.protocol import ControlPlane, InvalidTransitionError, TaskNotFoundError
from clearml_core.controlplane.records import Task, TaskStatus

if TYPE_CHECKING:
    from clearml_core.config import Config

log = logging.getLogger(__name__)

THRESHOLD_KEY = "agent.watchdog.threshold_sec"
INTERVAL_KEY = "agent.watchdog.watch_interval_sec"
REQUEUE_KEY = "agent.watchdog.requeue"
LEASE_NAME = "watchdog"
REASON = "non-responsive: {who} gave no sign of life for {silent:.0f} s (agent.watchdog.threshold_sec = {threshold:g})"
LEASE_INTERVALS = 2
"""The watchdog lease lasts two intervals: its holder renews it every interval, and when the
holder dies another daemon takes over within two."""


@dataclass(frozen=True)
class WatchdogSettings:
    """How long a worker may be silent, how often to look, and whether to requeue or fail."""

    threshold_sec: float = 7200
    watch_interval_sec: float = 900
    requeue: bool = False
    final_status: str = "failed"
    """What a silent task becomes when it is not re-queued: ``failed`` or ``stopped``."""
    reason_template: str = REASON
    """Its ``status_reason``; ``{who}``, ``{silent}`` and ``{threshold}`` are filled in."""

    @classmethod
    def from_config(cls, config: Config | None = None) -> WatchdogSettings:
        if config is None:
            from clearml_core.settings import get_config

            config = get_config()
        return cls(
            threshold_sec=config.get_float(THRESHOLD_KEY, 7200.0) or 7200.0,
            watch_interval_sec=config.get_float(INTERVAL_KEY, 900.0) or 900.0,
            requeue=config.get_bool(REQUEUE_KEY, False),
        )


@dataclass(frozen=True)
class WatchdogAction:
    """What the watchdog did to one task: ``failed`` or ``requeued``."""

    task_id: str
    worker: str | None
    action: str
    reason: str


def _handle(
    plane: ControlPlane, task: Task, reason: str, requeue: bool, final_status: str = "failed"
) -> WatchdogAction | None:
    worker = task.worker
    try:
        if requeue and task.queue:
            plane.requeue(task.id, reason=reason, expected_worker=worker)
            action = "requeued"
        else:
            status = TaskStatus(final_status)
            plane.set_status(task.id, status, reason=reason, expected_worker=worker)
            action = status.value
    except (InvalidTransitionError, TaskNotFoundError):
        return None  # its worker came back and finished it, or another daemon got there first
    log.warning("task %s %s: %s", task.id, action, reason)
    return WatchdogAction(task.id, worker, action, reason)


def check(
    plane: ControlPlane,
    now: float | None = None,
    *,
    threshold_sec: float = 7200,
    requeue: bool = False,
    final_status: str = "failed",
    reason_template: str = REASON,
) -> list[WatchdogAction]:
    """Fail (or stop, ``final_status``; or requeue) every running task whose worker has been silent
    for ``threshold_sec``.

    Workers silent that long are unregistered too (a worker that comes back registers again with
    its next heartbeat). ``now`` defaults to the plane's clock.
    """
    now = plane.clock() if now is None else now
    workers = {worker.id: worker for worker in plane.list_workers()}
    actions: list[WatchdogAction] = []
    for task in plane.list_tasks(status=TaskStatus.IN_PROGRESS):
        worker = workers.get(task.worker or "")
        signs = [t for t in (task.last_update, task.started) if t is not None]
        if worker is not None and worker.last_heartbeat is not None:
            signs.append(worker.last_heartbeat)
        last_seen = max(signs, default=0.0)
        silent = now - last_seen
        if silent < threshold_sec:
            continue
        who = f"worker {task.worker}" if task.worker else "its worker"
        reason = reason_template.format(who=who, silent=silent, threshold=threshold_sec)
        done = _handle(plane, task, reason, requeue, final_status)
        if done is not None:
            actions.append(done)
    for worker in workers.values():
        if worker.last_heartbeat is not None and now - worker.last_heartbeat >= threshold_sec:
            plane.unregister_worker(worker.id)
    return actions


def recover_worker_tasks(
    plane: ControlPlane, worker_id: str, *, requeue: bool = False, reason: str | None = None
) -> list[WatchdogAction]:
    """Handle the tasks a dead process of ``worker_id`` left ``in_progress``.

    Call it when a daemon starts, before it registers and pops: whatever that worker id was
    running belongs to a previous process that is gone.
    """
    reason = reason or f"the worker {worker_id} restarted while the task was running"
    actions: list[WatchdogAction] = []
    for task in plane.list_tasks(status=TaskStatus.IN_PROGRESS, worker=worker_id):
        done = _handle(plane, task, reason, requeue)
        if done is not None:
            actions.append(done)
    return actions


class Watchdog:
    """A :func:`check` bound to a plane and its settings, run at most every watch interval."""

    def __init__(self, plane: ControlPlane, settings: WatchdogSettings | None = None) -> None:
        self.plane = plane
        self.settings = settings or WatchdogSettings.from_config()
        self._last_check: float | None = None

    def check(self, now: float | None = None) -> list[WatchdogAction]:
        """Check now, whatever the interval."""
        now = self.plane.clock() if now is None else now
        self._last_check = now
        return check(
            self.plane,
            now,
            threshold_sec=self.settings.threshold_sec,
            requeue=self.settings.requeue,
            final_status=self.settings.final_status,
            reason_template=self.settings.reason_template,
        )

    def due(self, now: float | None = None) -> bool:
        now = self.plane.clock() if now is None else now
        return self._last_check is None or now - self._last_check >= self.settings.watch_interval_sec

    def maybe_check(self, now: float | None = None) -> list[WatchdogAction]:
        """Check when ``watch_interval_sec`` has passed since the last check (or never checked)
        and this process holds the watchdog lease of the store (:meth:`ControlPlane.claim_lease`:
        on a store shared by many machines one daemon is elected; the embedded store lets all)."""
        now = self.plane.clock() if now is None else now
        if not self.due(now):
            return []
        self._last_check = now  # elected or not, ask again one interval from now
        if not self.plane.claim_lease(LEASE_NAME, self.settings.watch_interval_sec * LEASE_INTERVALS):
            return []
        return self.check(now)


__all__ = [
    "Watchdog",
    "WatchdogAction",
    "WatchdogSettings",
    "check",
    "recover_worker_tasks",
]
