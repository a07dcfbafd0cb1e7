"""ClearML's task document ↔ clearml-core's :class:`~clearml_core.controlplane.Task` record, client side.

What both have travels in ClearML's own fields, so ClearML's SDK, web page and agent see the
same task: name, project, tags, parent, the script (repository, branch, ``version_num`` as
commit, tag, entry point, working dir, diff, pip requirements), the container, the output
destination and ``runtime``. What only clearml-core has (a local source ``folder``, the other
requirement kinds, ``parameters``, ``timeout``) is one configuration item of the task,
:data:`CORE_ITEM`, as JSON; what a run leaves (exit code, last log lines) is one key of
``runtime``, :data:`RUN_KEY`, which a reset clears with the rest of ``runtime``. The record's
``attributes`` are ClearML's other fields (type, comment, hyper-parameters, …). The field names
and time formats are those the server side reads (:mod:`clearml_core.server.taskview`).
"""

from __future__ import annotations

import copy
import json
import shlex
from collections.abc import Callable, Mapping
from typing import Any

from clearml_core.controlplane import Container, Parameters, Requirements, Script, Task, TaskStatus
from clearml_core.server.taskview import SCRIPT_FIELDS, epoch

CORE_ITEM = "clearml-core"
"""The configuration item that holds the definition ClearML has no field for."""

RUN_KEY = "clearml_core_run"
"""The key of ``runtime`` that holds the end of a run (exit code, last log lines)."""

RECORD_FIELDS = frozenset(
    {
        "id",
        "name",
        "project",
        "status",
        "status_reason",
        "status_message",
        "status_changed",
        "parent",
        "tags",
        "created",
        "started",
        "completed",
        "last_update",
        "last_change",
        "last_worker",
        "last_worker_report",
        "runtime",
        "script",
        "container",
        "output",
        "execution",
        "company",
        "user",
        "active_duration",
        "published",
        "last_iteration",
        "last_metrics",
        "last_changed_by",
    }
)
"""ClearML fields that are the record's, or the server's (which a client may not set): never
among ``attributes``."""

STATUSES = {
    "created": TaskStatus.CREATED,
    "queued": TaskStatus.QUEUED,
    "in_progress": TaskStatus.IN_PROGRESS,
    "stopped": TaskStatus.STOPPED,
    "failed": TaskStatus.FAILED,
    "completed": TaskStatus.COMPLETED,
    "publishing": TaskStatus.COMPLETED,
    "published": TaskStatus.COMPLETED,
    "closed": TaskStatus.COMPLETED,
}
"""ClearML's statuses as the control plane's (``unknown`` and anything else: ``created``)."""

RUN_STATUSES = frozenset(
    {TaskStatus.IN_PROGRESS, TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.STOPPED}
)
"""The statuses of a task that ran (or runs): its ``last_worker`` is its worker."""

STOPPING = "stopping"
"""ClearML's ``status_message`` of a running task someone asked to stop."""


def _lines(text: Any) -> list[str]:
    if isinstance(text, list):
        return [str(line) for line in text]
    return str(text or "").splitlines()


def _script_values(script: Mapping[str, Any]) -> dict[str, str]:
    values = {record: str(script.get(clearml) or "") for clearml, record in SCRIPT_FIELDS.items()}
    values["working_dir"] = values["working_dir"] or "."
    return values


def core_item(doc: Mapping[str, Any]) -> dict[str, Any]:
    """What :data:`CORE_ITEM` holds in a ClearML task document (empty when it has none)."""
    item = (doc.get("configuration") or {}).get(CORE_ITEM) or {}
    try:
        value = json.loads(item.get("value") or "{}")
    except (TypeError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def to_record(
    doc: Mapping[str, Any], project_name: Callable[[str], str], queue_name: Callable[[str], str]
) -> Task:
    """The record of a ClearML task document; ``project_name`` / ``queue_name`` turn ids into names."""
    core = core_item(doc)
    script = dict(doc.get("script") or {})
    requirements = script.get("requirements") or {}
    container = doc.get("container") or {}
    arguments = container.get("arguments") or ""
    runtime = dict(doc.get("runtime") or {})
    run = runtime.pop(RUN_KEY, None) or {}
    execution = doc.get("execution") or {}
    status = STATUSES.get(str(doc.get("status") or ""), TaskStatus.CREATED)
    attribute_keys = core.get("attributes")
    if isinstance(attribute_keys, list):
        attributes = {key: copy.deepcopy(doc[key]) for key in attribute_keys if key in doc}
    else:
        attributes = {key: copy.deepcopy(value) for key, value in doc.items() if key not in RECORD_FIELDS}
        configuration = dict(attributes.get("configuration") or {})
        configuration.pop(CORE_ITEM, None)
        if "configuration" in attributes:
            attributes["configuration"] = configuration
    return Task(
        id=str(doc["id"]),
        name=str(doc.get("name") or ""),
        project=project_name(str(doc["project"])) if doc.get("project") else "",
        status=status,
        script=Script(**_script_values(script), folder=str(core.get("folder") or "")),
        requirements=Requirements(
            pip=_lines(requirements.get("pip") if isinstance(requirements, dict) else None),
            conda=str(core.get("conda") or ""),
            poetry_lock=bool(core.get("poetry_lock")),
            uv_lock=bool(core.get("uv_lock")),
            frozen=[str(line) for line in core.get("frozen") or []],
        ),
        container=Container(
            image=str(container.get("image") or ""),
            arguments=[str(a) for a in arguments]
            if isinstance(arguments, list)
            else shlex.split(str(arguments)),
            setup_script=str(container.get("setup_shell_script") or ""),
        ),
        parameters=Parameters.from_dict(core.get("parameters") or {}),
        output_uri=str((doc.get("output") or {}).get("destination") or ""),
        timeout=float(core["timeout"]) if isinstance(core.get("timeout"), (int, float)) else None,
        queue=queue_name(str(execution["queue"])) if execution.get("queue") else None,
        worker=str(doc["last_worker"]) if doc.get("last_worker") and status in RUN_STATUSES else None,
        created=epoch(doc.get("created")),
        queued=epoch(doc.get("status_changed")) if status == TaskStatus.QUEUED else None,
        started=epoch(doc.get("started"))
        if status != TaskStatus.CREATED and status != TaskStatus.QUEUED
        else None,
        ended=epoch(doc.get("completed"))
        if status in (TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.STOPPED)
        else None,
        last_update=epoch(doc.get("last_update")),
        exit_code=int(run["exit_code"]) if isinstance(run.get("exit_code"), int) else None,
        status_reason=str(doc.get("status_reason") or ""),
        last_log_lines=[str(line) for line in run.get("last_log_lines") or []],
        abort_requested=status == TaskStatus.IN_PROGRESS and doc.get("status_message") == STOPPING,
        parent=str(doc["parent"]) if doc.get("parent") else None,
        tags=[str(tag) for tag in doc.get("tags") or []],
        runtime=runtime,
        attributes=attributes,
    )


def to_fields(task: Task, project_id: str | None, current: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The ClearML fields of ``task``'s definition, for ``tasks.create`` (``current`` None) or
    ``tasks.edit`` of the document ``current``."""
    current = current or {}
    fields: dict[str, Any] = {
        key: copy.deepcopy(value) for key, value in task.attributes.items() if key not in RECORD_FIELDS
    }
    fields.setdefault("type", "training")
    fields["name"] = task.name
    if project_id or current:
        fields["project"] = project_id
    fields["tags"] = list(task.tags)
    if task.parent or current:
        fields["parent"] = task.parent
    script = dict(current.get("script") or {})
    for clearml, record in SCRIPT_FIELDS.items():
        script[clearml] = getattr(task.script, record)
    requirements = dict(script.get("requirements") or {})
    requirements["pip"] = "\n".join(task.requirements.pip) if task.requirements.pip else ""
    script["requirements"] = requirements
    fields["script"] = script
    fields["container"] = {
        "image": task.container.image,
        "arguments": shlex.join(task.container.arguments),
        "setup_shell_script": task.container.setup_script,
    }
    fields["output_dest"] = task.output_uri
    runtime = copy.deepcopy(task.runtime)
    run = (current.get("runtime") or {}).get(RUN_KEY)
    if run:
        runtime[RUN_KEY] = run
    fields["runtime"] = runtime
    core = {
        "folder": task.script.folder,
        "conda": task.requirements.conda,
        "poetry_lock": task.requirements.poetry_lock,
        "uv_lock": task.requirements.uv_lock,
        "frozen": list(task.requirements.frozen),
        "parameters": task.parameters.to_dict(),
        "timeout": task.timeout,
        "attributes": sorted(fields.keys() & task.attributes.keys()),
    }
    configuration = dict(fields.get("configuration") or current.get("configuration") or {})
    configuration[CORE_ITEM] = {
        "name": CORE_ITEM,
        "type": "json",
        "value": json.dumps(core, sort_keys=True),
        "description": "clearml-core's definition of the task that ClearML has no field for",
    }
    fields["configuration"] = configuration
    return fields


__all__ = ["CORE_ITEM", "RUN_KEY", "STOPPING", "core_item", "epoch", "to_fields", "to_record"]
