"""``projects.*``: as far as creating and finding tasks needs them."""

from __future__ import annotations

from typing import Any

from clearml_core.server.endpoints import Call, endpoint
from clearml_core.server.errors import api_error
from clearml_core.server.services.common import name_matcher, order, page, project, tags_match
from clearml_core.server.taskview import iso


def _doc(call: Call, pid: str, record: dict[str, Any]) -> dict[str, Any]:
    name = str(record.get("name") or "")
    return {
        "id": pid,
        "name": name,
        "basename": name.rsplit("/", 1)[-1],
        "description": record.get("description") or "",
        "tags": record.get("tags") or [],
        "system_tags": record.get("system_tags") or [],
        "default_output_destination": record.get("default_output_destination"),
        "user": record.get("user"),
        "company": call.ctx.settings.company_id,
        "created": iso(record.get("created")),
        "last_update": iso(record.get("last_update") or record.get("created")),
    }


@endpoint("projects.create")
def create(call: Call) -> dict[str, Any]:
    call.require("name")
    fields = {
        key: call.data[key]
        for key in ("description", "tags", "system_tags", "default_output_destination")
        if call.data.get(key) is not None
    }
    pid = call.ctx.projects.create(
        call.get_str("name"), user=call.user.user, company=call.user.company, **fields
    )
    return {"id": pid}


@endpoint("projects.get_all")
def get_all(call: Call) -> dict[str, Any]:
    ids = set(call.get_list("id"))
    matcher = name_matcher(call.get_str("name") or None)
    basename = call.get_str("basename")
    tags, system_tags = call.get_list("tags"), call.get_list("system_tags")
    hidden = bool(call.data.get("search_hidden"))
    found = []
    for pid, record in call.ctx.projects.all().items():
        doc = _doc(call, pid, record)
        if ids and pid not in ids:
            continue
        if matcher is not None and not matcher.search(doc["name"]):
            continue
        if basename and doc["basename"] != basename:
            continue
        if not tags_match(doc["tags"], tags) or not tags_match(doc["system_tags"], system_tags):
            continue
        if not hidden and "hidden" in doc["system_tags"]:
            continue
        found.append(doc)
    found = page(call, order(found, call.get_list("order_by") or ["name"]))
    only = call.get_list("only_fields")
    return {"projects": [project(doc, only) for doc in found]}


@endpoint("projects.get_by_id")
def get_by_id(call: Call) -> dict[str, Any]:
    call.require("project")
    pid = call.get_str("project")
    record = call.ctx.projects.all().get(pid)
    if record is None:
        raise api_error("invalid_project_id", id=pid)
    return {"project": _doc(call, pid, record)}


@endpoint("projects.update")
def update(call: Call) -> dict[str, Any]:
    call.require("project")
    fields: dict[str, Any] = {
        key: call.data[key]
        for key in ("name", "description", "tags", "system_tags", "default_output_destination")
        if key in call.data
    }
    call.ctx.projects.update(call.get_str("project"), fields)
    return {"updated": 1, "fields": fields}


@endpoint("projects.delete")
def delete(call: Call) -> dict[str, Any]:
    call.require("project")
    pid = call.get_str("project")
    name = call.ctx.projects.name_of(pid)
    tasks = call.ctx.plane.list_tasks(project=name)
    if tasks and not call.data.get("force"):
        raise api_error("project_has_tasks", "delete them, or use force", id=pid, tasks=len(tasks))
    for task in tasks:
        call.ctx.plane.update_task(task.id, project="")
    deleted = call.ctx.projects.delete(pid)
    return {"deleted": int(deleted), "disassociated_tasks": len(tasks)}
