"""ClearML's task document ↔ the control plane's :class:`~clearml_core.controlplane.Task` record.

What both have lives in the record's own fields, so clearml-core's agent and CLI, sharing the
control plane, see and change the same task: name, project (by name), status, tags, parent, the
status reason, the output destination, the container, the script (repository, branch,
``version_num`` as commit, tag, entry point, working dir, diff), the pip requirements and
``runtime``; the queue, the worker and the timestamps are the store's. What only ClearML has —
type, comment, user, system tags, hyperparameters, configuration, models, artifacts, the rest of
``execution`` and ``output``, ``script.binary``, the other requirement kinds, ``status_message``,
``last_iteration``, ``last_metrics`` — lives in the record's ``attributes``. Where a ClearML value
becomes a record value by a conversion (container arguments as text vs. a list, requirements as
text vs. lines), the ClearML text is kept too and given back while the record still agrees with it.
"""

from __future__ import annotations

import copy
import shlex
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any

from clearml_core.controlplane import Container, Requirements, Script, Task
from clearml_core.server.errors import api_error
from clearml_core.server.ids import project_id, queue_id

SCRIPT_FIELDS = {
    "repository": "repository",
    "branch": "branch",
    "version_num": "commit",
    "tag": "tag",
    "entry_point": "entry_point",
    "working_dir": "working_dir",
    "diff": "diff",
}
"""ClearML's script fields that are the record's (ClearML name → record name)."""

STORE_OWNED = frozenset(
    {
        "id",
        "status",
        "created",
        "started",
        "completed",
        "last_update",
        "last_change",
        "status_changed",
        "last_worker",
        "last_worker_report",
        "company",
        "user",
        "active_duration",
        "published",
    }
)
"""Fields a client cannot set through create / edit."""

TASK_TYPES = (
    "training",
    "testing",
    "inference",
    "data_processing",
    "application",
    "monitor",
    "controller",
    "optimizer",
    "service",
    "qc",
    "custom",
)


def iso(timestamp: float | None) -> str | None:
    """An epoch time as ClearML's API writes times."""
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, timezone.utc).isoformat(timespec="microseconds")


def epoch(value: Any) -> float | None:
    """A ClearML time (ISO text, or epoch seconds or milliseconds) as epoch seconds."""
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)):
        return float(value) / 1000 if value > 10_000_000_000 else float(value)
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.timestamp()


def _text_lines(text: Any) -> list[str]:
    if isinstance(text, list):
        return [str(line) for line in text]
    return str(text or "").splitlines()


# -- record → ClearML ---------------------------------------------------------------------------


def to_clearml(task: Task) -> dict[str, Any]:
    """The ClearML task document of ``task``."""
    doc: dict[str, Any] = copy.deepcopy(task.attributes)
    doc.pop("container_text", None)
    doc["id"] = task.id
    doc["name"] = task.name
    doc["status"] = str(task.status)
    doc["project"] = project_id(task.project) if task.project else None
    doc["parent"] = task.parent
    doc["tags"] = list(task.tags)
    doc.setdefault("system_tags", [])
    doc.setdefault("type", "training")
    doc.setdefault("comment", "")
    doc.setdefault("status_message", "")
    doc["status_reason"] = task.status_reason
    doc["created"] = iso(task.created)
    doc["started"] = iso(task.started)
    doc["completed"] = iso(task.ended)
    doc["last_update"] = iso(task.last_update)
    doc["last_change"] = iso(task.last_update)
    doc["status_changed"] = iso(task.ended or task.started or task.queued or task.created)
    doc["last_worker"] = task.worker or doc.get("last_worker")
    if task.started is not None:
        end = task.ended if task.ended is not None else task.last_update
        doc["active_duration"] = int(max(0.0, (end or task.started) - task.started))
    doc["runtime"] = copy.deepcopy(task.runtime)

    output = dict(doc.get("output") or {})
    output["destination"] = task.output_uri or None
    doc["output"] = output

    execution = dict(doc.get("execution") or {})
    execution["queue"] = queue_id(task.queue) if task.queue else None
    execution.setdefault("parameters", {})
    execution.setdefault("artifacts", [])
    doc["execution"] = execution

    script = dict(doc.get("script") or {})
    for clearml_name, record_name in SCRIPT_FIELDS.items():
        script[clearml_name] = getattr(task.script, record_name)
    requirements = dict(script.get("requirements") or {})
    if _text_lines(requirements.get("pip")) != task.requirements.pip:
        requirements["pip"] = "\n".join(task.requirements.pip) if task.requirements.pip else None
    if requirements:
        script["requirements"] = requirements
    doc["script"] = script

    text = task.attributes.get("container_text")
    if isinstance(text, str) and shlex.split(text) == task.container.arguments:
        arguments = text
    else:
        arguments = shlex.join(task.container.arguments)
    doc["container"] = {
        "image": task.container.image,
        "arguments": arguments,
        "setup_shell_script": task.container.setup_script,
    }
    doc.setdefault("models", {"input": [], "output": []})
    doc.setdefault("hyperparams", {})
    doc.setdefault("configuration", {})
    return doc


def project_of(doc: Mapping[str, Any]) -> str | None:
    value = doc.get("project")
    return str(value) if value else None


# -- ClearML → record ---------------------------------------------------------------------------


def apply(task: Task, fields: Mapping[str, Any], project_name: Callable[[str], str]) -> Task:
    """``task`` with the ClearML fields of a create or edit set (whole top-level fields replaced,
    as ClearML server does); ``project_name`` turns a project id into its name."""
    attributes = task.attributes
    for key, value in fields.items():
        if key in STORE_OWNED:
            continue
        if key == "name":
            if not isinstance(value, str) or not value.strip():
                raise api_error("fields_value_error", "a task needs a name", field="name")
            task.name = value
        elif key == "project":
            task.project = project_name(str(value)) if value else ""
        elif key == "tags":
            task.tags = [str(tag) for tag in (value or [])]
        elif key == "parent":
            task.parent = str(value) if value else None
        elif key == "status_reason":
            task.status_reason = str(value or "")
        elif key == "type":
            if value not in TASK_TYPES:
                raise api_error("fields_value_error", f"unknown task type {value!r}", field="type")
            attributes["type"] = value
        elif key in ("output", "output_dest"):
            output = dict(value or {}) if key == "output" else {"destination": value}
            task.output_uri = str(output.pop("destination", None) or "")
            if key == "output":
                attributes["output"] = output
        elif key == "execution":
            execution = dict(value or {})
            execution.pop("queue", None)  # the queue is where enqueue puts it
            attributes["execution"] = execution
        elif key == "script":
            _apply_script(task, dict(value or {}))
        elif key == "container":
            container = dict(value or {})
            text = str(container.get("arguments") or "")
            try:
                arguments = shlex.split(text)
            except ValueError:
                raise api_error(
                    "fields_value_error", "container.arguments does not parse", field="container"
                ) from None
            task.container = Container(
                image=str(container.get("image") or ""),
                arguments=arguments,
                setup_script=str(container.get("setup_shell_script") or ""),
            )
            attributes["container_text"] = text
        elif key == "runtime":
            task.runtime = dict(value or {})
        elif value is None:
            attributes.pop(key, None)
        else:
            attributes[key] = copy.deepcopy(value)
    return task


def _apply_script(task: Task, script: dict[str, Any]) -> None:
    values = {record: str(script.pop(clearml, None) or "") for clearml, record in SCRIPT_FIELDS.items()}
    values["working_dir"] = values["working_dir"] or "."
    task.script = Script(folder=task.script.folder, **values)
    requirements = script.get("requirements")
    pip = _text_lines(requirements.get("pip")) if isinstance(requirements, dict) else []
    task.requirements = Requirements(
        pip=pip,
        conda=task.requirements.conda,
        poetry_lock=task.requirements.poetry_lock,
        uv_lock=task.requirements.uv_lock,
        frozen=task.requirements.frozen,
    )
    task.attributes["script"] = script


def set_requirements(task: Task, requirements: Mapping[str, Any]) -> Task:
    """``tasks.set_requirements``: the script's requirements replaced."""
    script = dict(task.attributes.get("script") or {})
    script["requirements"] = dict(requirements)
    task.attributes["script"] = script
    task.requirements.pip = _text_lines(requirements.get("pip"))
    return task


__all__ = [
    "SCRIPT_FIELDS",
    "STORE_OWNED",
    "TASK_TYPES",
    "apply",
    "epoch",
    "iso",
    "set_requirements",
    "to_clearml",
]
