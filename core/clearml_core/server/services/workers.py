"""``workers.*``: agents register, report their status and machine stats, and are listed."""

from __future__ import annotations

from typing import Any

from clearml_core.controlplane import Worker, WorkerNotFoundError
from clearml_core.server.endpoints import Call, endpoint
from clearml_core.server.errors import api_error
from clearml_core.server.ids import queue_id
from clearml_core.server.taskview import epoch, iso


def _queue_names(call: Call, key: str) -> list[str] | None:
    if key not in call.data:
        return None
    return [call.ctx.queues.name(str(queue)) for queue in call.get_list(key)]


def _worker_id(call: Call) -> str:
    call.require("worker")
    return call.get_str("worker")


@endpoint("workers.register")
def register(call: Call) -> dict[str, Any]:
    worker_id = _worker_id(call)
    info = {
        "user": call.user.user,
        "user_name": call.user.user_name,
        "ip": call.address,
        "tags": [str(t) for t in call.get_list("tags")],
        "system_tags": [str(t) for t in call.get_list("system_tags")],
    }
    call.ctx.plane.register_worker(
        worker_id, name=worker_id, queues=_queue_names(call, "queues") or [], info=info
    )
    call.ctx.workers.forget()
    return {}


@endpoint("workers.unregister")
def unregister(call: Call) -> dict[str, Any]:
    call.ctx.plane.unregister_worker(_worker_id(call))
    call.ctx.workers.forget()
    return {}


@endpoint("workers.status_report")
def status_report(call: Call) -> dict[str, Any]:
    worker_id = _worker_id(call)
    stats = call.data.get("machine_stats")
    if stats is not None and not isinstance(stats, dict):
        raise api_error("fields_type_error", "machine_stats must be an object", field="machine_stats")
    call.ctx.plane.heartbeat(worker_id, queues=_queue_names(call, "queues"), machine_stats=stats)
    return {}


def _doc(call: Call, worker: Worker) -> dict[str, Any]:
    plane = call.ctx.plane
    info = worker.info or {}
    task: dict[str, Any] | None = None
    if worker.task:
        try:
            record = plane.get_task(worker.task)
            running = (call.ctx.clock() - record.started) if record.started else 0
            task = {
                "id": record.id,
                "name": record.name,
                "running_time": int(running * 1000),
                "last_iteration": 0,
            }
        except Exception:  # it ended between the two reads
            task = None
    return {
        "id": worker.id,
        "user": {"id": info.get("user"), "name": info.get("user_name")},
        "company": {"id": call.ctx.settings.company_id, "name": call.ctx.settings.company_name},
        "ip": info.get("ip"),
        "register_time": iso(worker.registered),
        "last_activity_time": iso(worker.last_heartbeat),
        "last_report_time": iso(worker.last_heartbeat),
        "task": task,
        "queues": [{"id": queue_id(name), "name": name} for name in worker.queues],
        "tags": info.get("tags") or [],
        "system_tags": info.get("system_tags") or [],
        "machine_stats": worker.machine_stats,
    }


@endpoint("workers.get_all")
def get_all(call: Call) -> dict[str, Any]:
    last_seen = call.data.get("last_seen")
    now = call.ctx.clock()
    workers = []
    for worker in call.ctx.plane.list_workers():
        seen = worker.last_heartbeat or 0
        if isinstance(last_seen, (int, float)) and last_seen > 0 and now - seen > last_seen:
            continue
        workers.append(_doc(call, worker))
    return {"workers": workers}


@endpoint("workers.get_runtime_properties", min_version="2.13")
def get_runtime_properties(call: Call) -> dict[str, Any]:
    worker_id = _worker_id(call)
    try:
        worker = call.ctx.plane.get_worker(worker_id)
    except WorkerNotFoundError:
        return {"runtime_properties": []}
    now = call.ctx.clock()
    return {
        "runtime_properties": [
            {"key": key, "value": prop.value, "expiry": iso(prop.expires)}
            for key, prop in worker.runtime_properties.items()
            if prop.active(now)
        ]
    }


@endpoint("workers.set_runtime_properties", min_version="2.13")
def set_runtime_properties(call: Call) -> dict[str, Any]:
    worker_id = _worker_id(call)
    plane = call.ctx.plane
    try:
        plane.get_worker(worker_id)
    except WorkerNotFoundError:
        plane.heartbeat(worker_id)
    for prop in call.get_list("runtime_properties"):
        if not isinstance(prop, dict) or not prop.get("key"):
            raise api_error(
                "fields_value_error", "each runtime property needs a key", field="runtime_properties"
            )
        expiry = prop.get("expiry")
        expires = (
            epoch(expiry) if isinstance(expiry, str) else (call.ctx.clock() + expiry if expiry else None)
        )
        plane.set_worker_runtime(worker_id, str(prop["key"]), prop.get("value"), expires=expires)
    return {"added": len(call.get_list("runtime_properties"))}
