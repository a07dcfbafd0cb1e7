"""Copying the queues and the pending tasks of one control plane into another.

``clearml-core controlplane migrate --from URL --to URL`` moves a setup from the embedded SQLite
file to a shared Redis (or back, or between two prefixes of one Redis). It works through the
:class:`~clearml_core.controlplane.ControlPlane` protocol only, so any two stores will do.

What moves: every queue with its tags, and every task that is waiting, ``created`` or ``queued``,
with the same id; queued tasks are enqueued in the target in their source queue's order. Tasks
that ran or run (``in_progress`` and the final statuses) stay where they are: their worker reports
to the store it took them from. The source is only read.

Running it again is harmless: a queue that exists gets the tags it lacks, a task that exists is
left as it is, except that a task the source has queued but the target only holds as ``created``
(a previous run stopped between the two steps) is enqueued.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from clearml_core.controlplane.protocol import ControlPlane, QueueNotFoundError, TaskNotFoundError
from clearml_core.controlplane.records import Task, TaskStatus

PENDING = (TaskStatus.CREATED, TaskStatus.QUEUED)


@dataclass
class MigrationReport:
    """What :func:`migrate` did, for the CLI's table and ``--json``."""

    source: str
    target: str
    queues_created: list[str] = field(default_factory=list)
    queues_existing: list[str] = field(default_factory=list)
    tasks_copied: list[str] = field(default_factory=list)
    tasks_enqueued: list[str] = field(default_factory=list)
    tasks_existing: list[str] = field(default_factory=list)
    tasks_left: dict[str, int] = field(default_factory=dict)
    """Tasks not copied, counted by status (they ran, or run, on the source)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "from": self.source,
            "to": self.target,
            "queues": {"created": self.queues_created, "existing": self.queues_existing},
            "tasks": {
                "copied": self.tasks_copied,
                "enqueued": self.tasks_enqueued,
                "existing": self.tasks_existing,
                "left_behind": self.tasks_left,
            },
        }


def migrate(source: ControlPlane, target: ControlPlane) -> MigrationReport:
    """Copy the queues and the pending tasks of ``source`` into ``target`` (see the module docstring)."""
    report = MigrationReport(source.url, target.url)
    queues = source.list_queues()
    for queue in queues:
        try:
            existing = target.get_queue(queue.name)
        except QueueNotFoundError:
            target.create_queue(queue.name, tags=queue.tags)
            report.queues_created.append(queue.name)
            continue
        missing = [tag for tag in queue.tags if tag not in existing.tags]
        if missing:
            target.tag_queue(queue.name, add=missing)
        report.queues_existing.append(queue.name)

    pending: dict[str, Task] = {}
    for task in source.list_tasks():
        status = TaskStatus(task.status)
        if status in PENDING:
            pending[task.id] = task
        else:
            report.tasks_left[status.value] = report.tasks_left.get(status.value, 0) + 1
    for task in pending.values():
        try:
            target.get_task(task.id)
        except TaskNotFoundError:
            target.create_task(_definition(task))
            report.tasks_copied.append(task.id)
        else:
            report.tasks_existing.append(task.id)
    for queue in queues:
        for task_id in queue.tasks:
            waiting = pending.get(task_id)
            if waiting is None or waiting.status != TaskStatus.QUEUED:
                continue
            if target.get_task(task_id).status == TaskStatus.CREATED:
                target.enqueue(task_id, queue.name)
                report.tasks_enqueued.append(task_id)
    return report


def _definition(task: Task) -> Task:
    """The task as it waits: its definition, without what a store owns."""
    copy = Task.from_dict(task.to_dict())
    copy.queue = None
    return copy


__all__ = ["MigrationReport", "migrate"]
