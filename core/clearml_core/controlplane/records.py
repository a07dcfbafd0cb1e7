"""The records a control plane keeps: tasks, queues, workers, log batches, and the task statuses.

* :class:`Task` — what to run (script, requirements, container, parameters) and what happened
  (status, worker, timestamps, exit code, reason, last log lines).
* :class:`Queue` — a named FIFO of task ids, with tags (``force_workers:on``).
* :class:`Worker` — a daemon: its queues, heartbeat, runtime properties (``force: on|off`` with an
  expiry) and machine stats.
* :class:`LogEvent` — a batch of output lines of one task, numbered by ``seq`` so readers can ask
  for everything after the last one they saw (``task logs --follow``).

Status lifecycle (``task reset`` is the only way out of a final status)::

    created ──enqueue──▶ queued ──pop──▶ in_progress ──▶ completed | failed | stopped
       ▲  ◀──dequeue──────┘                 │  └─requeue (watchdog, drain)─▶ queued
       └────────── reset (from any status but in_progress, unless forced) ◀──┘

Records are plain dataclasses with ``to_dict`` / ``from_dict`` (JSON-safe, unknown keys ignored,
missing keys defaulted) so a store can keep them as documents and old rows keep loading when
fields are added. Timestamps are seconds since the epoch (``time.time()``). What a store does
with them is :class:`clearml_core.controlplane.protocol.ControlPlane`.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from enum import Enum
from typing import Any, TypeVar

from clearml_core.errors import UserError

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


# -- records ----------------------------------------------------------------------------------

R = TypeVar("R", bound="_Record")


class _Record:
    """to_dict / from_dict for the dataclasses below: nested records, enums, unknown keys.

    Written out rather than :func:`dataclasses.asdict`, which deep-copies every value: records are
    converted on every control-plane write, and the copy was most of the cost."""

    _nested: Mapping[str, Callable[[Any], Any]] = {}

    def to_dict(self) -> dict[str, Any]:
        return {name: _plain(getattr(self, name)) for name in _field_names(type(self))}

    @classmethod
    def from_dict(cls: type[R], data: Mapping[str, Any]) -> R:
        values = {name: data[name] for name in _field_names(cls) if name in data}
        for key, convert in cls._nested.items():
            if key in values and values[key] is not None:
                values[key] = convert(values[key])
        return cls(**values)


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def _field_names(cls: type) -> tuple[str, ...]:
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = tuple(f.name for f in fields(cls))
    return names


def _plain(value: Any) -> Any:
    """``value`` as JSON-ready data, copied where it is mutable."""
    if isinstance(value, _Record):
        return value.to_dict()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, tuple):
        return tuple(_plain(item) for item in value)
    return value


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
    ``runtime`` is free-form state the agent writes while running (resolved commit, device ids, …);
    ``reset`` clears it. ``attributes`` is free-form definition a front end keeps with the task (the
    ClearML API server keeps there what ClearML's tasks have and this record has no field for: type,
    hyperparameters, configuration, artifacts, models); ``clone`` copies it and ``reset`` keeps it.
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
    attributes: dict[str, Any] = field(default_factory=dict)

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
        "attributes",
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


def as_status(value: TaskStatus | str) -> TaskStatus:
    """A status from its name, or a :class:`UserError` listing the valid ones."""
    try:
        return TaskStatus(value)
    except ValueError:
        valid = ", ".join(s.value for s in TaskStatus)
        raise UserError(f"unknown task status {value!r}; use one of {valid}") from None


__all__ = [
    "EDITABLE_TASK_FIELDS",
    "FINAL_STATUSES",
    "LAST_LOG_LINES",
    "LOG_STREAMS",
    "TRANSITIONS",
    "Container",
    "LogEvent",
    "Parameters",
    "Queue",
    "Requirements",
    "RuntimeProperty",
    "Script",
    "Task",
    "TaskStatus",
    "Worker",
    "as_status",
    "new_task_id",
]
