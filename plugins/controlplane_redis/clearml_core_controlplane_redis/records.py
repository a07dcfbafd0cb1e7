"""Tasks as Redis hashes: the definition as one JSON document, the store-owned fields beside it.

The fields the store changes on its own (``status``, ``worker``, ``started``, …) are hash fields
of their own, each one JSON value, so the Lua script that hands a task out changes them without
decoding the document (Lua's JSON would round timestamps). Everything else is the ``doc`` field,
:meth:`Task.to_dict` as JSON: adding a field to :class:`Task` needs no migration, and a record
missing a field loads with its default.

Every record carries the ``schema`` it was written with; one written by a newer version of this
plugin is refused with a clear error rather than half understood.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from clearml_core.controlplane import ControlPlaneError, Task, TaskStatus, Worker

SCHEMA_VERSION = 1
"""The layout this plugin writes and reads; a store or record with a higher one is refused."""

STATE_FIELDS = (
    "status",
    "queue",
    "worker",
    "queued",
    "started",
    "ended",
    "last_update",
    "exit_code",
    "status_reason",
    "abort_requested",
)
"""Task fields kept as hash fields of their own (the ones the store's scripts change)."""
RECORD_FIELDS = ("schema", "doc", *STATE_FIELDS)
"""The hash fields a task is read from (the others are the store's counters and marks)."""


def newer_schema_error(what: str, version: int) -> ControlPlaneError:
    return ControlPlaneError(
        f"{what} has schema version {version}, written by a newer clearml-core Redis plugin (this one "
        f"knows up to {SCHEMA_VERSION}); upgrade clearml-core-controlplane-redis"
    )


def task_fields(task: Task) -> dict[str, str]:
    """The hash fields of a task record (not its counters: ``seq``, ``logseq``, …)."""
    data = task.to_dict()
    fields = {name: json.dumps(data.pop(name)) for name in STATE_FIELDS}
    fields["doc"] = json.dumps(data)
    fields["schema"] = str(SCHEMA_VERSION)
    return fields


def task_from_fields(task_id: str, fields: Mapping[str, str]) -> Task:
    """A task from its hash fields; a record this plugin cannot read is a :class:`ControlPlaneError`."""
    try:
        version = int(fields.get("schema", "0"))
    except ValueError:
        version = -1
    if version > SCHEMA_VERSION:
        raise newer_schema_error(f"the record of task {task_id}", version)
    try:
        if version < 1 or "doc" not in fields:
            raise ValueError("no clearml-core document")
        data: dict[str, Any] = json.loads(fields["doc"])
        for name in STATE_FIELDS:
            if name in fields:
                data[name] = json.loads(fields[name])
        data["status"] = TaskStatus(data.get("status") or TaskStatus.CREATED).value
        return Task.from_dict(data)
    except (ValueError, TypeError) as error:
        raise ControlPlaneError(
            f"the Redis record of task {task_id} is not one clearml-core can read ({error}); another "
            "program may use the same key prefix: give clearml-core its own with ?prefix=NAME"
        ) from None


def worker_json(worker: Worker) -> str:
    data = worker.to_dict()
    data.pop("tasks", None)
    data["schema"] = SCHEMA_VERSION
    return json.dumps(data)


def worker_from_json(worker_id: str, text: str) -> Worker:
    try:
        data = json.loads(text)
        version = int(data.get("schema", 0))
    except (ValueError, TypeError, AttributeError):
        raise ControlPlaneError(
            f"the Redis record of worker {worker_id} is not one clearml-core can read; another program "
            "may use the same key prefix: give clearml-core its own with ?prefix=NAME"
        ) from None
    if version > SCHEMA_VERSION:
        raise newer_schema_error(f"the record of worker {worker_id}", version)
    return Worker.from_dict(data)


__all__ = [
    "RECORD_FIELDS",
    "SCHEMA_VERSION",
    "STATE_FIELDS",
    "newer_schema_error",
    "task_fields",
    "task_from_fields",
    "worker_from_json",
    "worker_json",
]
