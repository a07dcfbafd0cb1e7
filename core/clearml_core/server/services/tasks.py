"""``tasks.*``: create, find, edit, clone, queue and report tasks, over the control plane's records.

Statuses follow the control plane's rules (see docs/control-planes.md), with ClearML's calls
mapped onto them: ``started`` runs a task (a no-op for the worker that already popped it),
``completed`` / ``failed`` / ``stopped`` end a run, ``stop`` asks the worker to abort (the task's
``status_message`` reads ``stopping`` until it does, which is what ClearML's agent and SDK watch
for), and ``enqueue`` of a task that ran resets it first. Changes of ClearML-only fields (see
:mod:`clearml_core.server.taskview`) read, change and write the record; one lock per task in this
process keeps the calls of one client from overwriting each other.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable
from typing import Any

from clearml_core.controlplane import (
    EDITABLE_TASK_FIELDS,
    FINAL_STATUSES,
    InvalidTransitionError,
    QueueNotFoundError,
    Task,
    TaskNotFoundError,
    TaskStatus,
)
from clearml_core.server.endpoints import Call, endpoint
from clearml_core.server.errors import api_error
from clearml_core.server.ids import project_id
from clearml_core.server.services.common import name_matcher, order, page, project, tags_match
from clearml_core.server.taskview import apply, set_requirements, to_clearml

_LOCKS = [threading.Lock() for _ in range(64)]


def _lock(task_id: str) -> threading.Lock:
    return _LOCKS[hash(task_id) % len(_LOCKS)]


def view(task: Task) -> dict[str, Any]:
    """The ClearML document of a task, with an abort request showing as ClearML shows it."""
    doc = to_clearml(task)
    if task.abort_requested and task.status == TaskStatus.IN_PROGRESS:
        doc["status_message"] = "stopping"
    return doc


def _task_id(call: Call, key: str = "task") -> str:
    call.require(key)
    return call.get_str(key)


def _project_name(call: Call) -> Callable[[str], str]:
    return call.ctx.projects.name_of


def _change(call: Call, task_id: str, mutate: Callable[[Task], Any]) -> Task:
    """Read the task, let ``mutate`` change a copy, write back what changed."""
    with _lock(task_id):
        current = call.ctx.plane.get_task(task_id)
        changed = Task.from_dict(current.to_dict())  # to_dict copies what is mutable
        mutate(changed)
        fields = {
            key: getattr(changed, key)
            for key in EDITABLE_TASK_FIELDS
            if getattr(changed, key) != getattr(current, key)
        }
        return call.ctx.plane.update_task(current.id, **fields) if fields else current


def _status_fields(call: Call, task: Task) -> dict[str, Any]:
    return {
        "status": str(task.status),
        "status_reason": task.status_reason,
        "status_message": call.get_str("status_message"),
    }


def _note(call: Call, task_id: str, current: Task | None = None) -> None:
    """Keep a status call's ``status_message`` with the task (``current``: as read under its lock)."""
    message = call.data.get("status_message")
    if message is None:
        return
    if current is None:
        with _lock(task_id):
            _note(call, task_id, call.ctx.plane.get_task(task_id))
        return
    if current.attributes.get("status_message") != str(message):
        call.ctx.plane.update_task(task_id, attributes={**current.attributes, "status_message": str(message)})


# -- create, read, edit ---------------------------------------------------------------------------


@endpoint("tasks.create")
def create(call: Call) -> dict[str, Any]:
    call.require("name")
    fields = dict(call.data)
    fields.setdefault("type", "training")
    task = Task(attributes={"user": call.user.user, "company": call.user.company})
    apply(task, fields, _project_name(call))
    return {"id": call.ctx.plane.create_task(task).id}


@endpoint("tasks.get_by_id")
def get_by_id(call: Call) -> dict[str, Any]:
    return {"task": view(call.ctx.plane.get_task(_task_id(call)))}


def _listing(call: Call) -> list[dict[str, Any]]:
    plane = call.ctx.plane
    ids = [str(task_id) for task_id in call.get_list("id")]
    statuses = [str(status) for status in call.get_list("status")]
    projects = [str(pid) for pid in call.get_list("project")]
    if ids:
        tasks = []
        for task_id in dict.fromkeys(ids):
            try:
                tasks.append(plane.get_task(task_id))
            except TaskNotFoundError:  # an id that is not there is left out, as ClearML server does
                continue
    else:
        known = [s for s in statuses if s in {status.value for status in TaskStatus}]
        if statuses and not known:
            return []
        names = [call.ctx.projects.name_of(pid) for pid in projects if pid]
        tasks = plane.list_tasks(
            status=known or None, project=names[0] if len(names) == 1 and None not in projects else None
        )
    matcher = name_matcher(call.get_str("name") or None)
    types = [str(t) for t in call.get_list("type")]
    users = set(call.get_list("user"))
    parent = call.get_str("parent")
    tags, system_tags = call.get_list("tags"), call.get_list("system_tags")
    hidden = bool(call.data.get("search_hidden"))
    search = call.get_str("search_text").lower()
    wanted_projects = set(projects)
    found = []
    for task in tasks:
        doc = view(task)
        if statuses and doc["status"] not in statuses:
            continue
        if (
            wanted_projects
            and doc["project"] not in wanted_projects
            and not (None in wanted_projects and not doc["project"])
        ):
            continue
        if matcher is not None and not matcher.search(doc["name"]):
            continue
        if types and not tags_match([doc.get("type") or ""], types):
            continue
        if users and doc.get("user") not in users:
            continue
        if parent and doc.get("parent") != parent:
            continue
        if not tags_match(doc["tags"], tags) or not tags_match(doc.get("system_tags") or [], system_tags):
            continue
        if not hidden and "hidden" in (doc.get("system_tags") or []) and not ids:
            continue
        if search and search not in f"{doc['id']} {doc['name']} {doc.get('comment') or ''}".lower():
            continue
        found.append(doc)
    return page(call, order(found, call.get_list("order_by")))


@endpoint("tasks.get_all")
def get_all(call: Call) -> dict[str, Any]:
    only = call.get_list("only_fields")
    return {"tasks": [project(doc, only) for doc in _listing(call)]}


@endpoint("tasks.get_all_ex")
def get_all_ex(call: Call) -> dict[str, Any]:
    return get_all(call)


@endpoint("tasks.get_types")
def get_types(call: Call) -> dict[str, Any]:
    return {"types": sorted({view(task).get("type") or "training" for task in call.ctx.plane.list_tasks()})}


def _edit(call: Call, *, check_status: bool) -> dict[str, Any]:
    task_id = _task_id(call)
    fields = {key: value for key, value in call.data.items() if key not in ("task", "force")}
    if check_status and not call.data.get("force"):
        status = call.ctx.plane.get_task(task_id).status
        if status != TaskStatus.CREATED:
            raise api_error(
                "invalid_task_status", "edit only a task in status created, or use force", status=str(status)
            )
    _change(call, task_id, lambda task: apply(task, fields, _project_name(call)))
    return {"updated": 1, "fields": fields}


@endpoint("tasks.edit")
def edit(call: Call) -> dict[str, Any]:
    return _edit(call, check_status=True)


@endpoint("tasks.update")
def update(call: Call) -> dict[str, Any]:
    """Name, comment, tags, system tags, project, ``output__error``: in any status."""
    allowed = {"task", "name", "comment", "tags", "system_tags", "project", "output__error"}
    unknown = sorted(set(call.data) - allowed - {"force"})
    if unknown:
        raise api_error("validation_error", "tasks.update cannot change these fields", fields=unknown)
    error = call.data.pop("output__error", None)
    if error is not None:
        call.data["output"] = {
            **(view(call.ctx.plane.get_task(_task_id(call))).get("output") or {}),
            "error": error,
        }
    return _edit(call, check_status=False)


@endpoint("tasks.set_requirements")
def set_requirements_(call: Call) -> dict[str, Any]:
    task_id = _task_id(call)
    requirements = call.data.get("requirements")
    if not isinstance(requirements, dict):
        raise api_error("fields_type_error", "requirements must be an object", field="requirements")
    _change(call, task_id, lambda task: set_requirements(task, requirements))
    return {"updated": 1, "fields": {"script.requirements": requirements}}


@endpoint("tasks.clone")
def clone(call: Call) -> dict[str, Any]:
    source_id = _task_id(call)
    plane = call.ctx.plane
    source = plane.get_task(source_id)
    new = plane.clone(source_id, name=call.get_str("new_task_name") or None)

    def overrides(task: Task) -> None:
        attributes = task.attributes
        attributes.update(user=call.user.user, company=call.user.company)
        for key in ("last_iteration", "last_metrics", "status_message", "last_worker", "published"):
            attributes.pop(key, None)
        execution = dict(attributes.get("execution") or {})
        execution["artifacts"] = [a for a in execution.get("artifacts") or [] if a.get("mode") == "input"]
        execution.update(call.data.get("execution_overrides") or {})
        attributes["execution"] = execution
        models = dict(attributes.get("models") or {})
        models["output"] = []
        if call.data.get("new_task_input_models") is not None:
            models["input"] = call.data["new_task_input_models"]
        attributes["models"] = models
        fields: dict[str, Any] = {"parent": call.get_str("new_task_parent") or source.id}
        for key, field in (
            ("new_task_tags", "tags"),
            ("new_task_system_tags", "system_tags"),
            ("new_task_comment", "comment"),
            ("new_task_hyperparams", "hyperparams"),
            ("new_task_configuration", "configuration"),
            ("new_task_container", "container"),
            ("new_task_project", "project"),
        ):
            if call.data.get(key) is not None:
                fields[field] = call.data[key]
        if call.data.get("new_project_name"):
            fields["project"] = call.ctx.projects.ensure(
                call.get_str("new_project_name"), user=call.user.user, company=call.user.company
            )
        apply(task, fields, _project_name(call))
        task.runtime = {}

    _change(call, new.id, overrides)
    result: dict[str, Any] = {"id": new.id}
    if call.data.get("new_project_name"):
        name = call.get_str("new_project_name")
        result["new_project"] = {"id": project_id(name), "name": name}
    return result


@endpoint("tasks.delete")
def delete(call: Call) -> dict[str, Any]:
    task_id = _task_id(call)
    task = call.ctx.plane.get_task(task_id)
    if task.status == TaskStatus.IN_PROGRESS and not call.data.get("force"):
        raise api_error("task_in_progress", "abort it first, or use force", id=task_id)
    call.ctx.plane.delete_task(task_id, force=True)
    return {"deleted": True, "updated_children": 0, "updated_models": 0, "events": {}, "urls": {}}


# -- queueing and status --------------------------------------------------------------------------


def _queue_name(call: Call) -> str:
    plane = call.ctx.plane
    if call.data.get("queue"):
        return call.ctx.queues.name(call.get_str("queue"))
    name = call.get_str("queue_name")
    if name:
        try:
            plane.get_queue(name)
        except QueueNotFoundError:
            plane.create_queue(name, exist_ok=True)
        return name
    from clearml_core.server.services.queues import get_default

    return str(get_default(call)["name"])


@endpoint("tasks.enqueue")
def enqueue(call: Call) -> dict[str, Any]:
    task_id = _task_id(call)
    plane = call.ctx.plane
    queue = _queue_name(call)
    task = plane.get_task(task_id)
    if task.status == TaskStatus.QUEUED:
        raise api_error("task_already_queued", task=task_id, queue=task.queue)
    if task.status in FINAL_STATUSES:
        plane.reset(task_id)
    task = plane.enqueue(task_id, queue)
    if call.data.get("status_reason"):  # after: enqueueing starts with no reason
        task = plane.update_task(task_id, status_reason=call.get_str("status_reason"))
    _note(call, task_id)
    result: dict[str, Any] = {"queued": 1, "updated": 1, "fields": _status_fields(call, task)}
    if call.data.get("verify_watched_queue"):
        result["queue_watched"] = any(queue in worker.queues for worker in plane.list_workers())
    return result


@endpoint("tasks.dequeue")
def dequeue(call: Call) -> dict[str, Any]:
    task_id = _task_id(call)
    task = call.ctx.plane.get_task(task_id)
    if task.status != TaskStatus.QUEUED:
        raise api_error("invalid_task_status", "the task is not queued", id=task_id, status=str(task.status))
    task = call.ctx.plane.dequeue(task_id)
    _note(call, task_id)
    return {"dequeued": 1, "updated": 1, "fields": _status_fields(call, task)}


@endpoint("tasks.started")
def started(call: Call) -> dict[str, Any]:
    """Run the task on the calling worker; the worker that popped it just confirms."""
    task_id = _task_id(call)
    plane = call.ctx.plane
    worker = call.worker or call.user.user
    began = 0
    with _lock(task_id):  # one read serves the status check and the status message
        task = plane.get_task(task_id)
        if task.status == TaskStatus.IN_PROGRESS:
            pass
        elif task.status in (TaskStatus.CREATED, TaskStatus.QUEUED):
            task = plane.start(task_id, worker)
            began = 1
        elif call.data.get("force"):
            plane.reset(task_id)
            task = plane.start(task_id, worker)
            began = 1
        else:
            raise api_error(
                "invalid_task_status", f"the task is {task.status}; use force to run it again", id=task_id
            )
        _note(call, task_id, task)
    return {"started": began, "updated": 1, "fields": _status_fields(call, task)}


def _finish(call: Call, status: TaskStatus) -> dict[str, Any]:
    task_id = _task_id(call)
    plane = call.ctx.plane
    task = plane.get_task(task_id)
    reason = call.data.get("status_reason")
    if task.status == status:
        _note(call, task_id)
        return {"updated": 0, "fields": _status_fields(call, task)}
    if task.status in FINAL_STATUSES:
        if not call.data.get("force"):
            raise api_error("invalid_task_status", f"the task is {task.status} already", id=task_id)
        plane.reset(task_id)
        task = plane.get_task(task_id)
    if status == TaskStatus.STOPPED and task.status != TaskStatus.IN_PROGRESS:
        task = plane.abort(task_id, reason=str(reason or "stopped"))
    else:
        if task.status != TaskStatus.IN_PROGRESS:
            plane.start(task_id, call.worker or call.user.user)
        task = plane.set_status(task_id, status, reason=str(reason) if reason is not None else None)
    _note(call, task_id)
    return {"updated": 1, "fields": _status_fields(call, task)}


@endpoint("tasks.completed", min_version="2.2")
def completed(call: Call) -> dict[str, Any]:
    result = _finish(call, TaskStatus.COMPLETED)
    if call.data.get("publish"):
        raise api_error(
            "not_supported", "this server does not publish tasks; it was completed", id=call.data["task"]
        )
    return {**result, "published": 0}


@endpoint("tasks.failed")
def failed(call: Call) -> dict[str, Any]:
    return _finish(call, TaskStatus.FAILED)


@endpoint("tasks.stopped")
def stopped(call: Call) -> dict[str, Any]:
    return _finish(call, TaskStatus.STOPPED)


@endpoint("tasks.stop")
def stop(call: Call) -> dict[str, Any]:
    """Ask for a task to stop: at once when it waits, through its worker when it runs."""
    task_id = _task_id(call)
    reason = call.get_str("status_reason") or "aborted by user"
    try:
        task = call.ctx.plane.abort(task_id, reason=reason, force=bool(call.data.get("force")))
    except InvalidTransitionError as error:
        raise api_error("invalid_task_status", str(error), id=task_id) from None
    return {"updated": 1, "fields": _status_fields(call, task)}


@endpoint("tasks.reset")
def reset(call: Call) -> dict[str, Any]:
    task_id = _task_id(call)
    plane = call.ctx.plane
    was = plane.get_task(task_id)
    if was.status == TaskStatus.IN_PROGRESS and not call.data.get("force"):
        raise api_error("task_in_progress", "abort it first, or use force", id=task_id)
    plane.reset(task_id, force=True)

    def clear_outputs(task: Task) -> None:
        attributes = task.attributes
        for key in ("last_iteration", "last_metrics", "status_message", "published"):
            attributes.pop(key, None)
        execution = dict(attributes.get("execution") or {})
        execution["artifacts"] = [a for a in execution.get("artifacts") or [] if a.get("mode") == "input"]
        attributes["execution"] = execution
        models = dict(attributes.get("models") or {})
        models["output"] = []
        attributes["models"] = models

    _change(call, task_id, clear_outputs)
    dequeued = {"removed": 1} if was.status == TaskStatus.QUEUED else {}
    return {"updated": 1, "dequeued": dequeued, "events": {}, "deleted_models": 0, "urls": {}, "fields": {}}


@endpoint("tasks.ping")
def ping(call: Call) -> dict[str, Any]:
    """A sign of life of a running task (it counts for the non-responsive task watchdog)."""
    call.ctx.plane.update_task(_task_id(call))
    return {}


def _unsupported(call: Call) -> dict[str, Any]:
    raise api_error(
        "not_supported", f"this server has no {call.name}; a task ends completed", task=call.data.get("task")
    )


endpoint("tasks.publish")(_unsupported)
endpoint("tasks.close")(_unsupported)


# -- ClearML-only parts: artifacts, hyperparameters, configuration, models, archive -------------


def _artifact_key(item: Any) -> tuple[str, str]:
    return str(item.get("key")), str(item.get("mode") or "output")


@endpoint("tasks.add_or_update_artifacts", min_version="2.10")
def add_or_update_artifacts(call: Call) -> dict[str, Any]:
    task_id = _task_id(call)
    items = call.get_list("artifacts")
    if any(not isinstance(item, dict) or not item.get("key") for item in items):
        raise api_error("validation_error", "each artifact needs a key", field="artifacts")

    def update_(task: Task) -> None:
        execution = dict(task.attributes.get("execution") or {})
        artifacts = {_artifact_key(a): a for a in execution.get("artifacts") or []}
        for item in items:
            artifacts[_artifact_key(item)] = {**item, "mode": item.get("mode") or "output"}
        execution["artifacts"] = list(artifacts.values())
        task.attributes["execution"] = execution

    _change(call, task_id, update_)
    return {"updated": len(items)}


@endpoint("tasks.delete_artifacts", min_version="2.10")
def delete_artifacts(call: Call) -> dict[str, Any]:
    task_id = _task_id(call)
    keys = {_artifact_key(item) for item in call.get_list("artifacts") if isinstance(item, dict)}
    removed = 0

    def update_(task: Task) -> None:
        nonlocal removed
        execution = dict(task.attributes.get("execution") or {})
        before = execution.get("artifacts") or []
        execution["artifacts"] = [a for a in before if _artifact_key(a) not in keys]
        removed = len(before) - len(execution["artifacts"])
        task.attributes["execution"] = execution

    _change(call, task_id, update_)
    return {"deleted": removed}


def _items(call: Call, key: str) -> list[dict[str, Any]]:
    items = call.get_list(key)
    if any(not isinstance(item, dict) for item in items):
        raise api_error("validation_error", f"each item of {key} must be an object", field=key)
    return items


@endpoint("tasks.edit_hyper_params", min_version="2.9")
def edit_hyper_params(call: Call) -> dict[str, Any]:
    task_id = _task_id(call)
    items = _items(call, "hyperparams")
    replace = call.get_str("replace_hyperparams") or "none"

    def update_(task: Task) -> None:
        params: dict[str, dict[str, Any]] = (
            {} if replace == "all" else copy.deepcopy(task.attributes.get("hyperparams") or {})
        )
        if replace == "section":
            for section in {str(item.get("section") or "") for item in items}:
                params.pop(section, None)
        for item in items:
            section, name = str(item.get("section") or ""), str(item.get("name") or "")
            params.setdefault(section, {})[name] = {**item, "section": section, "name": name}
        task.attributes["hyperparams"] = params

    _change(call, task_id, update_)
    return {"updated": 1}


@endpoint("tasks.get_hyper_params", min_version="2.9")
def get_hyper_params(call: Call) -> dict[str, Any]:
    result = []
    for task_id in call.get_list("tasks"):
        params = call.ctx.plane.get_task(str(task_id)).attributes.get("hyperparams") or {}
        result.append(
            {
                "task": task_id,
                "hyperparams": [item for section in params.values() for item in section.values()],
            }
        )
    return {"params": result}


@endpoint("tasks.delete_hyper_params", min_version="2.9")
def delete_hyper_params(call: Call) -> dict[str, Any]:
    task_id = _task_id(call)
    items = _items(call, "hyperparams")
    removed = 0

    def update_(task: Task) -> None:
        nonlocal removed
        params = copy.deepcopy(task.attributes.get("hyperparams") or {})
        for item in items:
            section, name = str(item.get("section") or ""), item.get("name")
            if name is None:
                removed += len(params.pop(section, {}))
            elif params.get(section, {}).pop(str(name), None) is not None:
                removed += 1
        task.attributes["hyperparams"] = params

    _change(call, task_id, update_)
    return {"deleted": removed}


@endpoint("tasks.edit_configuration", min_version="2.9")
def edit_configuration(call: Call) -> dict[str, Any]:
    task_id = _task_id(call)
    items = _items(call, "configuration")

    def update_(task: Task) -> None:
        current = (
            {}
            if call.data.get("replace_configuration")
            else copy.deepcopy(task.attributes.get("configuration") or {})
        )
        for item in items:
            current[str(item.get("name") or "")] = dict(item)
        task.attributes["configuration"] = current

    _change(call, task_id, update_)
    return {"updated": 1}


@endpoint("tasks.get_configurations", min_version="2.9")
def get_configurations(call: Call) -> dict[str, Any]:
    names = set(call.get_list("names"))
    result = []
    for task_id in call.get_list("tasks"):
        items = call.ctx.plane.get_task(str(task_id)).attributes.get("configuration") or {}
        result.append(
            {"task": task_id, "configuration": [v for k, v in items.items() if not names or k in names]}
        )
    return {"configurations": result}


@endpoint("tasks.get_configuration_names", min_version="2.9")
def get_configuration_names(call: Call) -> dict[str, Any]:
    result = []
    for task_id in call.get_list("tasks"):
        items = call.ctx.plane.get_task(str(task_id)).attributes.get("configuration") or {}
        result.append({"task": task_id, "names": sorted(items)})
    return {"configurations": result}


@endpoint("tasks.delete_configuration", min_version="2.9")
def delete_configuration(call: Call) -> dict[str, Any]:
    task_id = _task_id(call)
    names = {str(name) for name in call.get_list("configuration")}
    removed = 0

    def update_(task: Task) -> None:
        nonlocal removed
        current = copy.deepcopy(task.attributes.get("configuration") or {})
        removed = sum(1 for name in names if current.pop(name, None) is not None)
        task.attributes["configuration"] = current

    _change(call, task_id, update_)
    return {"deleted": removed}


@endpoint("tasks.add_or_update_model", min_version="2.13")
def add_or_update_model(call: Call) -> dict[str, Any]:
    task_id = _task_id(call)
    call.require("name", "model", "type")
    kind = call.get_str("type")
    if kind not in ("input", "output"):
        raise api_error("fields_value_error", "type must be input or output", field="type")
    entry = {"name": call.get_str("name"), "model": call.get_str("model")}

    def update_(task: Task) -> None:
        models = copy.deepcopy(task.attributes.get("models") or {"input": [], "output": []})
        models[kind] = [m for m in models.get(kind) or [] if m.get("name") != entry["name"]] + [entry]
        task.attributes["models"] = models

    _change(call, task_id, update_)
    return {"updated": 1}


@endpoint("tasks.delete_models", min_version="2.13")
def delete_models(call: Call) -> dict[str, Any]:
    task_id = _task_id(call)
    wanted = {(str(m.get("name")), str(m.get("type"))) for m in _items(call, "models")}

    def update_(task: Task) -> None:
        models = copy.deepcopy(task.attributes.get("models") or {"input": [], "output": []})
        for kind in ("input", "output"):
            models[kind] = [m for m in models.get(kind) or [] if (str(m.get("name")), kind) not in wanted]
        task.attributes["models"] = models

    _change(call, task_id, update_)
    return {"updated": 1}


def _system_tag(call: Call, ids: list[Any], tag: str, *, add: bool) -> int:
    for task_id in ids:

        def update_(task: Task) -> None:
            tags = [t for t in task.attributes.get("system_tags") or [] if t != tag]
            task.attributes["system_tags"] = [*tags, tag] if add else tags

        _change(call, str(task_id), update_)
    return len(ids)


@endpoint("tasks.archive")
def archive(call: Call) -> dict[str, Any]:
    return {"archived": _system_tag(call, call.get_list("tasks"), "archived", add=True)}


@endpoint("tasks.archive_many", min_version="2.13")
def archive_many(call: Call) -> dict[str, Any]:
    ids = call.get_list("ids")
    _system_tag(call, ids, "archived", add=True)
    return {"succeeded": [{"id": task_id, "archived": True} for task_id in ids], "failed": []}


@endpoint("tasks.unarchive_many", min_version="2.13")
def unarchive_many(call: Call) -> dict[str, Any]:
    ids = call.get_list("ids")
    _system_tag(call, ids, "archived", add=False)
    return {"succeeded": [{"id": task_id, "unarchived": True} for task_id in ids], "failed": []}
