"""The control-plane protocol: what a task / queue / worker store must do, independent of storage.

A control plane holds three kinds of records and the task log:

* :class:`Task` — what to run (script, requirements, container, parameters) and what happened
  (status, worker, timestamps, exit code, reason, last log lines).
* :class:`Queue` — a named FIFO of task ids, with tags (``force_workers:on``).
* :class:`Worker` — a daemon: its queues, heartbeat, runtime properties (``force: on|off`` with an
  expiry) and machine stats.
* :class:`LogEvent` — a batch of output lines of one task, numbered by ``seq`` so readers can ask
  for everything after the last one they saw (``task logs --follow``).

:class:`ControlPlane` is the abstract store. The embedded SQLite plane
(:mod:`clearml_core.controlplane.sqlite`) and the Redis plugin implement it; plugins register theirs
with the ``clearml_control_planes`` hook, and :mod:`clearml_core.testing.controlplane` holds the
conformance suite every implementation must pass.

Status lifecycle (``task reset`` is the only way out of a final status)::

    created ──enqueue──▶ queued ──pop──▶ in_progress ──▶ completed | failed | stopped
       ▲  ◀──dequeue──────┘                 │  └─requeue (watchdog, drain)─▶ queued
       └────────── reset (from any status but in_progress, unless forced) ◀──┘

Records are plain dataclasses with ``to_dict`` / ``from_dict`` (JSON-safe, unknown keys ignored,
missing keys defaulted) so a store can keep them as documents and old rows keep loading when
fields are added. Timestamps are seconds since the epoch (``time.time()``) taken from the plane's
:attr:`ControlPlane.clock`, which tests replace.
"""

from __future__ import annotations

import abc
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from enum import Enum
from typing import Any, TypeVar

from clearml_core.errors import NotFoundError, UserError

# -- statuses ---------------------------------------------------------------------------------


class TaskStatus(str, Enum):
    """Where a task is in its life. The values are what ClearML calls them."""

    CREATED = "created"
    QUEUED = "queued"
    IN_PROGRESS = "in_progress"
    STOPPED = "stopped"
    COMPLETED = "completed"
    FAILED = "failed"

    def __str__(self) -> str:
        return self.value

    @property
    def is_final(self) -> bool:
        return self in FINAL_STATUSES


FINAL_STATUSES = frozenset({TaskStatus.STOPPED, TaskStatus.COMPLETED, TaskStatus.FAILED})

TRANSITIONS: Mapping[TaskStatus, frozenset[TaskStatus]] = {
    TaskStatus.CREATED: frozenset({TaskStatus.QUEUED, TaskStatus.IN_PROGRESS, TaskStatus.STOPPED}),
    TaskStatus.QUEUED: frozenset({TaskStatus.CREATED, TaskStatus.IN_PROGRESS, TaskStatus.STOPPED}),
    TaskStatus.IN_PROGRESS: frozenset(
        {TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.STOPPED, TaskStatus.QUEUED}
    ),
    TaskStatus.STOPPED: frozenset(),
    TaskStatus.COMPLETED: frozenset(),
    TaskStatus.FAILED: frozenset(),
}
"""Allowed status changes (besides ``reset``, which returns any task to ``created``)."""

LOG_STREAMS = ("stdout", "stderr")
LAST_LOG_LINES = 50
"""How many of a task's last output lines its record keeps once it ends."""

DEFAULT_QUEUE = "default"
"""A fresh control plane has this queue, as ClearML's server does."""


# -- errors -----------------------------------------------------------------------------------


class ControlPlaneError(UserError):
    """The control plane cannot be used as it is (file locked, corrupt, unreachable, too new)."""


class InvalidTransitionError(UserError):
    """The requested change does not fit the task's status (enqueue a completed task, …)."""


class AlreadyExistsError(UserError):
    """A queue (or task id) of that name exists already."""


class TaskNotFoundError(NotFoundError):
    def __init__(self, task_id: str) -> None:
        super().__init__(f"no task with id {task_id!r}; `clearml-core task list` shows the tasks")
        self.task_id = task_id


class QueueNotFoundError(NotFoundError):
    def __init__(self, name: str) -> None:
        super().__init__(
            f"no queue named {name!r}; create it with `clearml-core queue create {name}` "
            "(or start the daemon with --create-queue)"
        )
        self.queue = name


class WorkerNotFoundError(NotFoundError):
    def __init__(self, worker_id: str) -> None:
        super().__init__(f"no worker with id {worker_id!r}; `clearml-core worker list` shows the workers")
        self.worker_id = worker_id


# -- records ----------------------------------------------------------------------------------

R = TypeVar("R", bound="_Record")


class _Record:
    """to_dict / from_dict for the dataclasses below: nested records, enums, unknown keys."""

    _nested: Mapping[str, Callable[[Any], Any]] = {}

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)  # type: ignore[call-overload]
        for key, value in data.items():
            if isinstance(value, Enum):
                data[key] = value.value
        return data

    @classmethod
    def from_dict(cls: type[R], data: Mapping[str, Any]) -> R:
        known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        values = {key: value for key, value in data.items() if key in known}
        for key, convert in cls._nested.items():
            if key in values and values[key] is not None:
                values[key] = convert(values[key])
        return cls(**values)


@dataclass
class Script(_Record):
    """What to run: a git checkout (``repository`` …) or a local ``folder``, and the entry point.

    ``folder`` is an absolute path copied into the task's working dir when the task runs (not when
    it is created). ``entry_point`` is relative to ``working_dir``, itself relative to the
    repository root or the folder. ``diff`` is uncommitted changes to apply after checkout.
    """

    repository: str = ""
    branch: str = ""
    commit: str = ""
    tag: str = ""
    entry_point: str = ""
    working_dir: str = "."
    diff: str = ""
    folder: str = ""

    @property
    def source(self) -> str:
        """``git``, ``folder`` or ``none``."""
        if self.repository:
            return "git"
        return "folder" if self.folder else "none"


@dataclass
class Requirements(_Record):
    """Packages to install before the entry point runs.

    ``pip`` holds requirement lines; ``conda`` an environment.yml text; ``poetry_lock`` /
    ``uv_lock`` tell the package manager to use the repository's lock file. ``frozen`` is the exact
    package list the agent installed (written back after the environment is built, so a clone
    reproduces it).
    """

    pip: list[str] = field(default_factory=list)
    conda: str = ""
    poetry_lock: bool = False
    uv_lock: bool = False
    frozen: list[str] = field(default_factory=list)


@dataclass
class Container(_Record):
    """The docker image to run in (empty: the daemon's default), its arguments, a setup script."""

    image: str = ""
    arguments: list[str] = field(default_factory=list)
    setup_script: str = ""


@dataclass
class Parameters(_Record):
    """Command-line arguments of the entry point and environment variables of its process."""

    argv: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)


@dataclass
class Task(_Record):
    """One experiment: its definition and what became of it.

    The store owns ``status``, ``queue``, ``worker``, the timestamps and ``abort_requested``:
    change them through the plane's operations, not :meth:`ControlPlane.update_task`. ``queue``
    stays set after the task leaves its queue, so ``requeue`` and the UI know where it came from.
    ``runtime`` is free-form state the agent writes while running (resolved commit, device ids, …).
    """

    id: str = ""
    name: str = ""
    project: str = ""
    status: TaskStatus = TaskStatus.CREATED
    script: Script = field(default_factory=Script)
    requirements: Requirements = field(default_factory=Requirements)
    container: Container = field(default_factory=Container)
    parameters: Parameters = field(default_factory=Parameters)
    output_uri: str = ""
    timeout: float | None = None
    queue: str | None = None
    worker: str | None = None
    created: float | None = None
    queued: float | None = None
    started: float | None = None
    ended: float | None = None
    last_update: float | None = None
    exit_code: int | None = None
    status_reason: str = ""
    last_log_lines: list[str] = field(default_factory=list)
    abort_requested: bool = False
    parent: str | None = None
    tags: list[str] = field(default_factory=list)
    runtime: dict[str, Any] = field(default_factory=dict)

    _nested = {
        "status": TaskStatus,
        "script": Script.from_dict,
        "requirements": Requirements.from_dict,
        "container": Container.from_dict,
        "parameters": Parameters.from_dict,
    }

    def to_dict(self) -> dict[str, Any]:
        data = super().to_dict()
        data["status"] = TaskStatus(self.status).value
        return data


EDITABLE_TASK_FIELDS = frozenset(
    {
        "name",
        "project",
        "script",
        "requirements",
        "container",
        "parameters",
        "output_uri",
        "timeout",
        "status_reason",
        "last_log_lines",
        "tags",
        "runtime",
    }
)
"""Fields :meth:`ControlPlane.update_task` may change; the rest belong to the store."""


@dataclass
class Queue(_Record):
    """A named FIFO of task ids (first is next) and its tags (``force_workers:on|off``, …)."""

    name: str
    tasks: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    created: float | None = None


@dataclass
class RuntimeProperty(_Record):
    """A worker setting changed at run time (``force: on``), valid until ``expires`` (None: forever)."""

    value: str
    expires: float | None = None

    def active(self, now: float) -> bool:
        return self.expires is None or now < self.expires


@dataclass
class Worker(_Record):
    """A daemon that pulls tasks. ``tasks`` is derived: its tasks now ``in_progress``."""

    id: str
    name: str = ""
    queues: list[str] = field(default_factory=list)
    tasks: list[str] = field(default_factory=list)
    registered: float | None = None
    last_heartbeat: float | None = None
    runtime_properties: dict[str, RuntimeProperty] = field(default_factory=dict)
    machine_stats: dict[str, Any] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)

    _nested = {
        "runtime_properties": lambda props: {
            key: prop if isinstance(prop, RuntimeProperty) else RuntimeProperty.from_dict(prop)
            for key, prop in props.items()
        }
    }

    @property
    def task(self) -> str | None:
        """The task it runs now (the first one when it runs several)."""
        return self.tasks[0] if self.tasks else None

    def runtime_value(self, key: str, now: float | None = None) -> str | None:
        """The value of a runtime property that has not expired, else None."""
        prop = self.runtime_properties.get(key)
        if prop is None or not prop.active(time.time() if now is None else now):
            return None
        return prop.value


@dataclass
class LogEvent(_Record):
    """A batch of output lines; ``seq`` grows by one per batch of a task, starting at 1."""

    task_id: str
    seq: int
    timestamp: float
    stream: str
    lines: list[str]


def new_task_id() -> str:
    """A fresh task id: 32 hex digits, like ClearML's."""
    return uuid.uuid4().hex


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
        from clearml_core.controlplane.rules import pause  # it imports this module

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


def as_status(value: TaskStatus | str) -> TaskStatus:
    """A status from its name, or a :class:`UserError` listing the valid ones."""
    try:
        return TaskStatus(value)
    except ValueError:
        valid = ", ".join(s.value for s in TaskStatus)
        raise UserError(f"unknown task status {value!r}; use one of {valid}") from None


__all__ = [
    "DEFAULT_QUEUE",
    "EDITABLE_TASK_FIELDS",
    "FINAL_STATUSES",
    "LAST_LOG_LINES",
    "LOG_STREAMS",
    "TRANSITIONS",
    "AlreadyExistsError",
    "Container",
    "ControlPlane",
    "ControlPlaneError",
    "InvalidTransitionError",
    "LogEvent",
    "Parameters",
    "Queue",
    "QueueNotFoundError",
    "Requirements",
    "RuntimeProperty",
    "Script",
    "Task",
    "TaskNotFoundError",
    "TaskStatus",
    "Worker",
    "WorkerNotFoundError",
    "as_status",
    "new_task_id",
]
