"""The control-plane protocol: what a task / queue / worker store must do, independent of storage.

A control plane keeps the records of :mod:`clearml_core.controlplane.records` — tasks, queues,
workers and the task log — and moves tasks through their status lifecycle, each operation atomic:
a queued task is handed to exactly one worker, and a status changes only along
:data:`~clearml_core.controlplane.records.TRANSITIONS`.

:class:`ControlPlane` is the abstract store, and the errors below are what its operations raise.
The embedded SQLite plane (:mod:`clearml_core.controlplane.sqlite`) and the Redis plugin implement
it; plugins register theirs with the ``clearml_control_planes`` hook, and
:mod:`clearml_core.testing.controlplane` holds the conformance suite every implementation must
pass. Timestamps come from the plane's :attr:`ControlPlane.clock`, which tests replace.
"""

from __future__ import annotations

import abc
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from clearml_core.controlplane.errors import (
    AlreadyExistsError,
    ControlPlaneError,
    InvalidTransitionError,
    QueueNotFoundError,
    TaskNotFoundError,
    WorkerNotFoundError,
)
from clearml_core.controlplane.records import (
    EDITABLE_TASK_FIELDS,
    LogEvent,
    Queue,
    Task,
    TaskStatus,
    Worker,
)

DEFAULT_QUEUE = "default"
"""A fresh control plane has this queue, as ClearML's server does."""


# -- the store --------------------------------------------------------------------------------


class ControlPlane(abc.ABC):
    """Stores tasks, queues, workers and task logs; safe to share between threads and processes.

    Every operation is atomic on its own. Errors a user can cause are :class:`UserError` s:
    :class:`TaskNotFoundError` / :class:`QueueNotFoundError` / :class:`WorkerNotFoundError`,
    :class:`InvalidTransitionError`, :class:`AlreadyExistsError`, and
    :class:`ControlPlaneError` when the store itself cannot be used.

    Implementations are created from a URL by the factory their :class:`ControlPlaneSpec` names,
    called as ``factory(url, config)`` (``config`` is a :class:`clearml_core.config.Config`).
    """

    url: str = ""

    def __init__(self, *, clock: Callable[[], float] | None = None) -> None:
        self.clock: Callable[[], float] = clock or time.time
        """Source of every timestamp the plane writes; tests replace it."""

    # -- tasks -----------------------------------------------------------------------------
    @abc.abstractmethod
    def create_task(self, task: Task) -> Task:
        """Store a new task in status ``created``; assigns ``id`` (when empty) and ``created``.

        The store-owned fields of ``task`` are reset. Returns the stored record.
        """

    @abc.abstractmethod
    def get_task(self, task_id: str) -> Task:
        """The task with this id, or :class:`TaskNotFoundError`."""

    @abc.abstractmethod
    def update_task(self, task_id: str, **changes: Any) -> Task:
        """Change definition fields (:data:`EDITABLE_TASK_FIELDS`) in any status.

        Nested records may be given as records or dicts. Store-owned fields raise ``ValueError``.
        """

    @abc.abstractmethod
    def list_tasks(
        self,
        *,
        status: TaskStatus | str | Iterable[TaskStatus | str] | None = None,
        queue: str | None = None,
        project: str | None = None,
        name: str | None = None,
        worker: str | None = None,
        limit: int | None = None,
    ) -> list[Task]:
        """Tasks matching every filter given, oldest first.

        ``name`` matches a part of the name; the others match exactly. ``queue`` matches the
        queue the task was last put in.
        """

    @abc.abstractmethod
    def delete_task(self, task_id: str, *, force: bool = False) -> None:
        """Remove a task, its queue entry and its logs. A task ``in_progress`` needs ``force``."""

    # -- queueing --------------------------------------------------------------------------
    @abc.abstractmethod
    def enqueue(self, task_id: str, queue: str, *, front: bool = False) -> Task:
        """Put a ``created`` task at the end (``front``: the head) of an existing queue."""

    @abc.abstractmethod
    def dequeue(self, task_id: str) -> Task:
        """Take a ``queued`` task out of its queue; it goes back to ``created``."""

    @abc.abstractmethod
    def pop(self, queues: Sequence[str], worker_id: str) -> Task | None:
        """Hand out the next task, exactly once however many workers ask at the same time.

        Looks at ``queues`` in the order given and takes the head of the first non-empty one;
        the task becomes ``in_progress`` with ``worker`` = ``worker_id`` and ``started`` set.
        Returns None when every queue is empty. Unknown queue names count as empty.
        """

    @abc.abstractmethod
    def start(self, task_id: str, worker_id: str) -> Task:
        """Run a ``created`` or ``queued`` task now, without its queue (``agent execute``).

        Like :meth:`pop` for one named task: it leaves its queue and becomes ``in_progress``.
        """

    @abc.abstractmethod
    def requeue(
        self, task_id: str, *, reason: str = "", front: bool = True, expected_worker: str | None = None
    ) -> Task:
        """Return an ``in_progress`` task to its queue (the watchdog, a draining daemon).

        ``worker`` and ``started`` are cleared, the abort flag too; ``reason`` is recorded. The
        queue is the task's ``queue``; it is created again if it was deleted meanwhile.
        ``expected_worker`` makes it conditional on the task being run by that worker (else
        :class:`InvalidTransitionError`), so a watchdog never takes a task from the worker that
        got it after an earlier requeue.
        """

    # -- status ----------------------------------------------------------------------------
    @abc.abstractmethod
    def set_status(
        self,
        task_id: str,
        status: TaskStatus | str,
        *,
        reason: str | None = None,
        exit_code: int | None = None,
        last_log_lines: Sequence[str] | None = None,
        expected_worker: str | None = None,
    ) -> Task:
        """Move a task to ``status`` when :data:`TRANSITIONS` allows it, else
        :class:`InvalidTransitionError`.

        For ``queued``/``in_progress`` use :meth:`enqueue`/:meth:`pop`/:meth:`start`/
        :meth:`requeue`; this method serves the ends of a run (``completed``/``failed``/
        ``stopped``), which set ``ended``. A final status without ``last_log_lines`` records the
        last :data:`LAST_LOG_LINES` lines of the task's log. ``expected_worker`` makes the change
        conditional on the task being run by that worker (a worker that lost its task to the
        watchdog must not overwrite what happened since).
        """

    @abc.abstractmethod
    def abort(self, task_id: str, *, reason: str = "aborted by user", force: bool = False) -> Task:
        """Stop a task.

        ``created``/``queued``: it becomes ``stopped`` at once (and leaves its queue).
        ``in_progress``: ``abort_requested`` is set and the worker running it stops it and marks
        it ``stopped``; ``force`` marks it ``stopped`` at once (its worker is gone). ``stopped``:
        nothing happens. ``completed``/``failed``: :class:`InvalidTransitionError`.
        """

    @abc.abstractmethod
    def abort_requested(self, task_id: str) -> bool:
        """Whether someone asked to abort this task; cheap, the daemon polls it."""

    @abc.abstractmethod
    def reset(self, task_id: str, *, force: bool = False) -> Task:
        """Return a task to ``created``: clears the run (worker, times, exit code, reason, logs).

        A queued task leaves its queue. A task ``in_progress`` needs ``force``.
        """

    def clone(self, task_id: str, *, name: str | None = None, project: str | None = None) -> Task:
        """A new ``created`` task with the definition of ``task_id``; ``parent`` points back."""
        source = self.get_task(task_id)
        definition = {key: getattr(source, key) for key in EDITABLE_TASK_FIELDS}
        definition.update(status_reason="", last_log_lines=[], runtime={})
        task = Task(**definition)
        task.name = name if name is not None else f"Clone Of {source.name}"
        if project is not None:
            task.project = project
        task.parent = source.id
        task.queue = None
        return self.create_task(task)

    # -- logs ------------------------------------------------------------------------------
    @abc.abstractmethod
    def append_logs(
        self, task_id: str, lines: Sequence[str], *, stream: str = "stdout", timestamp: float | None = None
    ) -> int:
        """Add a batch of lines (no trailing newlines) to a task's log; returns its ``seq``.

        Also counts as a sign of life of the task (``last_update``).
        """

    @abc.abstractmethod
    def read_logs(self, task_id: str, *, after: int = 0, limit: int | None = None) -> list[LogEvent]:
        """The task's log batches with ``seq > after``, in order (at most ``limit``)."""

    # -- queues ----------------------------------------------------------------------------
    @abc.abstractmethod
    def create_queue(self, name: str, *, tags: Iterable[str] = (), exist_ok: bool = False) -> Queue:
        """Create an empty queue; an existing one is :class:`AlreadyExistsError` unless ``exist_ok``."""

    @abc.abstractmethod
    def get_queue(self, name: str) -> Queue:
        """The queue with its task ids in order, or :class:`QueueNotFoundError`."""

    @abc.abstractmethod
    def list_queues(self) -> list[Queue]:
        """Every queue, by name."""

    @abc.abstractmethod
    def delete_queue(self, name: str, *, force: bool = False) -> None:
        """Delete a queue. One with tasks needs ``force``; its tasks go back to ``created``."""

    @abc.abstractmethod
    def tag_queue(self, name: str, *, add: Iterable[str] = (), remove: Iterable[str] = ()) -> Queue:
        """Add and remove tags (order kept, no duplicates)."""

    # -- workers ---------------------------------------------------------------------------
    @abc.abstractmethod
    def register_worker(
        self,
        worker_id: str,
        *,
        name: str = "",
        queues: Sequence[str] = (),
        info: Mapping[str, Any] | None = None,
    ) -> Worker:
        """Add or refresh a worker; counts as a heartbeat. Runtime properties survive a re-register."""

    @abc.abstractmethod
    def heartbeat(
        self,
        worker_id: str,
        *,
        queues: Sequence[str] | None = None,
        machine_stats: Mapping[str, Any] | None = None,
    ) -> Worker:
        """Record that the worker is alive (and what it listens to, its machine stats).

        An unknown worker is registered (it may have been pruned while it was unreachable).
        """

    @abc.abstractmethod
    def unregister_worker(self, worker_id: str) -> None:
        """Forget a worker (a daemon that stops); unknown ids are ignored."""

    @abc.abstractmethod
    def get_worker(self, worker_id: str) -> Worker:
        """The worker, with ``tasks`` filled in, or :class:`WorkerNotFoundError`."""

    @abc.abstractmethod
    def list_workers(self) -> list[Worker]:
        """Every registered worker, by id, with ``tasks`` filled in."""

    @abc.abstractmethod
    def set_worker_runtime(
        self, worker_id: str, key: str, value: str | None, *, expires: float | None = None
    ) -> Worker:
        """Set a runtime property (``force`` = ``on``/``off``) until ``expires`` (epoch seconds).

        ``value`` None removes it. Unknown worker: :class:`WorkerNotFoundError`.
        """

    # -- documents -------------------------------------------------------------------------
    # A small keyed store beside the records, for front ends that keep data of their own in the
    # same place as the tasks (the ClearML API server's projects, users and access keys), so that
    # every process serving one control plane sees the same. Not abstract: a store written before
    # documents existed still serves the agent and the CLI, and says so when a server asks.

    def put_document(
        self, kind: str, key: str, document: Mapping[str, Any], *, only_new: bool = False
    ) -> bool:
        """Store a JSON-safe ``document`` under ``(kind, key)``, replacing what was there.

        ``only_new``: store it only when there is none yet (atomically: of several processes that
        try at once, one succeeds). Returns whether it was stored.
        """
        raise self._no_documents()

    def get_document(self, kind: str, key: str) -> dict[str, Any] | None:
        """The document under ``(kind, key)``, or None."""
        raise self._no_documents()

    def list_documents(self, kind: str) -> dict[str, dict[str, Any]]:
        """Every document of ``kind``, by key."""
        raise self._no_documents()

    def delete_document(self, kind: str, key: str) -> bool:
        """Remove the document under ``(kind, key)``; whether there was one."""
        raise self._no_documents()

    def _no_documents(self) -> ControlPlaneError:
        return ControlPlaneError(
            f"the control plane {self.url or type(self).__name__} keeps no documents (its plugin predates "
            "them), so the ClearML API server cannot keep its projects and access keys there; upgrade "
            "the plugin or serve another control plane"
        )

    # -- waiting and chores ----------------------------------------------------------------
    def wait_for_tasks(
        self,
        queues: Sequence[str],
        timeout: float,
        *,
        cancel: threading.Event | None = None,
        poll: float = 1.0,
    ) -> bool:
        """Wait up to ``timeout`` seconds until one of ``queues`` may hold a task.

        True when there may be work (call :meth:`pop`: another worker may have been faster),
        False when ``timeout`` passed or ``cancel`` was set. The daemon waits here between pops.
        Stores that can block (Redis) return the moment a task is enqueued and cost nothing
        while they wait; this default looks at the queues every ``poll`` seconds.
        """
        from clearml_core.controlplane.rules import pause

        deadline = time.monotonic() + timeout
        while True:
            if self._holds_tasks(queues):
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            if pause(min(remaining, max(poll, 0.001)), cancel):
                return False

    def _holds_tasks(self, queues: Sequence[str]) -> bool:
        for name in queues:
            try:
                if self.get_queue(name).tasks:
                    return True
            except QueueNotFoundError:
                continue
        return False

    def claim_lease(self, name: str, seconds: float) -> bool:
        """Whether this process may do the chore ``name`` (the watchdog) for the next ``seconds``.

        A store shared by many machines elects one holder, which keeps the lease while it asks
        again in time; when it stops asking, the lease expires and another process gets it. The
        default says yes to everyone: every daemon of an embedded store does the chore, which is
        harmless because each change it makes is conditional.
        """
        return True

    # -- lifecycle -------------------------------------------------------------------------
    def close(self) -> None:  # noqa: B027  (optional for implementations)
        """Release connections held by this process."""

    def __enter__(self) -> ControlPlane:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


__all__ = [
    "DEFAULT_QUEUE",
    "AlreadyExistsError",
    "ControlPlane",
    "ControlPlaneError",
    "InvalidTransitionError",
    "QueueNotFoundError",
    "TaskNotFoundError",
    "WorkerNotFoundError",
]
