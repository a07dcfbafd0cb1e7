"""The record changes every control plane makes the same way, whatever it stores them in.

A store decides how to keep tasks atomically; what a task looks like after ``create_task``,
``pop``/``start`` or ``reset``, which status changes are allowed and how a refused one is worded
are the protocol's, so they live here once and the SQLite plane, the Redis plugin and any other
store share them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import Any

from clearml_core.controlplane.errors import InvalidTransitionError
from clearml_core.controlplane.records import (
    EDITABLE_TASK_FIELDS,
    FINAL_STATUSES,
    TRANSITIONS,
    Task,
    TaskStatus,
    as_status,
    new_task_id,
)


def refusal(task: Task, new: TaskStatus, action: str = "") -> InvalidTransitionError:
    """The error for a change the task's status does not allow, saying what to do first."""
    status = TaskStatus(task.status)
    what = action or f"become {new.value}"
    where, hint = "", ""
    if status in FINAL_STATUSES:
        hint = f"; reset it first: clearml-core task reset {task.id}"
    elif status == TaskStatus.IN_PROGRESS:
        where = f" on {task.worker}"
        hint = f"; abort it first: clearml-core task abort {task.id}"
    elif status == TaskStatus.QUEUED:
        where = f" in queue {task.queue!r}"
    return InvalidTransitionError(f"task {task.id} is {status.value}{where}; it cannot {what}{hint}")


def run_end(status: TaskStatus | str) -> TaskStatus:
    """The status ``set_status`` was asked for, which must be one that ends a run."""
    new = as_status(status)
    if new not in FINAL_STATUSES:
        raise InvalidTransitionError(
            f"set_status ends a run; use enqueue, pop, start or requeue to make a task {new.value}"
        )
    return new


def check_transition(task: Task, new: TaskStatus, action: str = "") -> None:
    """Raise :func:`refusal` unless :data:`TRANSITIONS` allows the change."""
    if new not in TRANSITIONS[TaskStatus(task.status)]:
        raise refusal(task, new, action)


def new_record(task: Task, now: float) -> Task:
    """``task`` as ``create_task`` stores it: an id, ``created``, and what the store owns reset."""
    stored = Task.from_dict(task.to_dict())
    stored.id = stored.id or new_task_id()
    stored.status = TaskStatus.CREATED
    stored.worker = None
    stored.queued = stored.started = stored.ended = None
    stored.exit_code = None
    stored.abort_requested = False
    stored.created = now
    return stored


def check_editable(changes: Mapping[str, Any]) -> None:
    """``update_task`` changes definition fields only."""
    unknown = set(changes) - EDITABLE_TASK_FIELDS
    if unknown:
        raise ValueError(f"update_task cannot change {', '.join(sorted(unknown))}; use the status operations")


def with_changes(task: Task, changes: Mapping[str, Any]) -> Task:
    """``task`` with ``update_task``'s changes (records or dicts) applied; the abort flag kept."""
    merged = task.to_dict()
    for key, value in changes.items():
        merged[key] = value.to_dict() if hasattr(value, "to_dict") else value
    updated = Task.from_dict(merged)
    updated.abort_requested = task.abort_requested
    return updated


def start_run(task: Task, worker_id: str, now: float) -> Task:
    """Mark ``task`` ``in_progress`` on ``worker_id`` (``pop``, ``start``): a fresh run."""
    task.status = TaskStatus.IN_PROGRESS
    task.worker = worker_id
    task.started = now
    task.ended = None
    task.exit_code = None
    task.status_reason = ""
    task.abort_requested = False
    return task


def clear_run(task: Task) -> Task:
    """``task`` back to ``created`` with nothing of its runs (``reset``; the store drops its logs)."""
    task.status = TaskStatus.CREATED
    task.worker = None
    task.queued = task.started = task.ended = None
    task.exit_code = None
    task.status_reason = ""
    task.last_log_lines = []
    task.abort_requested = False
    task.runtime = {}
    return task


def pause(seconds: float, cancel: threading.Event | None) -> bool:
    """Sleep ``seconds``, or until ``cancel`` is set; True when it was."""
    if cancel is not None:
        return cancel.wait(seconds)
    time.sleep(seconds)
    return False


__all__ = [
    "check_editable",
    "check_transition",
    "clear_run",
    "new_record",
    "pause",
    "refusal",
    "start_run",
    "with_changes",
]
