"""``queues.*``: the control plane's queues under ClearML's ids, and taking the next task.

A queue's ClearML id is derived from its name (:func:`~clearml_core.server.ids.queue_id`); its
ClearML tags are the control plane's queue tags, so ``force_workers:on`` set here reaches
clearml-core's daemons. System tags and metadata, which only ClearML has, are documents beside
it. The ``default`` queue carries the system tag ``default``, as in ClearML server.

``queues.wait_for_tasks`` is clearml-core's own (ClearML server has no such call): a long poll
that holds the request until one of the queues may hold a task, so clearml-core's agents on the
ClearML control plane take a task the moment it is enqueued instead of at their next poll. The
server announces it in ``auth.login``'s reply (``data.clearml_core.extensions``), and the client
sends it only where it is announced; against ClearML's own server it polls.
"""

from __future__ import annotations

import math
from typing import Any

from clearml_core.controlplane import DEFAULT_QUEUE, Queue, TaskNotFoundError, TaskStatus
from clearml_core.server.endpoints import Call, endpoint
from clearml_core.server.errors import api_error
from clearml_core.server.ids import queue_id
from clearml_core.server.services.common import name_matcher, order, page, project, tags_match
from clearml_core.server.settings import WAIT_FOR_TASKS
from clearml_core.server.taskview import iso

KIND = "server.queues"

MAX_WAIT_SEC = 30.0
"""The longest ``queues.wait_for_tasks`` holds a request, whatever its ``timeout``: well below the
60 s that clearml-core's client (and ClearML's) wait for an answer, and below the idle timeouts of
common proxies, so a held request is answered rather than cut."""


def _extra(call: Call, name: str) -> dict[str, Any]:
    extra = call.ctx.plane.get_document(KIND, queue_id(name)) or {}
    if name == DEFAULT_QUEUE:
        extra["system_tags"] = list(dict.fromkeys([*extra.get("system_tags", []), "default"]))
    return extra


def _doc(
    call: Call, queue: Queue, *, with_times: bool = False, max_entries: int | None = None
) -> dict[str, Any]:
    extra = _extra(call, queue.name)
    ids = queue.tasks if max_entries is None else queue.tasks[:max_entries]
    entries = []
    for task_id in ids:
        added = None
        if with_times:
            try:
                added = iso(call.ctx.plane.get_task(task_id).queued)
            except TaskNotFoundError:  # gone since the queue was read
                continue
        entries.append({"task": task_id, "added": added})
    return {
        "id": call.ctx.queues.remember(queue.name),
        "name": queue.name,
        "display_name": extra.get("display_name") or queue.name,
        "user": extra.get("user"),
        "company": call.ctx.settings.company_id,
        "created": iso(queue.created),
        "tags": list(queue.tags),
        "system_tags": extra.get("system_tags") or [],
        "metadata": extra.get("metadata") or {},
        "entries": entries,
    }


def _queue(call: Call, key: str = "queue") -> Queue:
    call.require(key)
    return call.ctx.plane.get_queue(call.ctx.queues.name(call.get_str(key)))


@endpoint("queues.create")
def create(call: Call) -> dict[str, Any]:
    call.require("name")
    name = call.get_str("name").strip()
    queue = call.ctx.plane.create_queue(name, tags=[str(t) for t in call.get_list("tags")])
    extra = {"user": call.user.user, "system_tags": [str(t) for t in call.get_list("system_tags")]}
    if call.data.get("display_name"):
        extra["display_name"] = call.get_str("display_name")
    call.ctx.plane.put_document(KIND, queue_id(name), extra)
    return {"id": call.ctx.queues.remember(queue.name)}


@endpoint("queues.get_all")
def get_all(call: Call) -> dict[str, Any]:
    ids = set(call.get_list("id"))
    matcher = name_matcher(call.get_str("name") or None)
    tags, system_tags = call.get_list("tags"), call.get_list("system_tags")
    max_entries = call.data.get("max_task_entries")
    found = []
    for queue in call.ctx.plane.list_queues():
        if ids and queue_id(queue.name) not in ids:
            continue
        if matcher is not None and not matcher.search(queue.name):
            continue
        doc = _doc(call, queue, max_entries=max_entries if isinstance(max_entries, int) else None)
        if not tags_match(doc["tags"], tags) or not tags_match(doc["system_tags"], system_tags):
            continue
        found.append(doc)
    found = page(call, order(found, call.get_list("order_by") or ["name"]))
    only = call.get_list("only_fields")
    return {"queues": [project(doc, only) for doc in found]}


@endpoint("queues.get_by_id")
def get_by_id(call: Call) -> dict[str, Any]:
    max_entries = call.data.get("max_task_entries")
    queue = _queue(call)
    return {
        "queue": _doc(
            call, queue, with_times=True, max_entries=max_entries if isinstance(max_entries, int) else None
        )
    }


@endpoint("queues.get_default")
def get_default(call: Call) -> dict[str, Any]:
    for queue in call.ctx.plane.list_queues():
        if "default" in (_extra(call, queue.name).get("system_tags") or []):
            return {"id": call.ctx.queues.remember(queue.name), "name": queue.name}
    raise api_error("no_default_queue")


@endpoint("queues.update")
def update(call: Call) -> dict[str, Any]:
    queue = _queue(call)
    fields: dict[str, Any] = {}
    if "name" in call.data and call.data["name"] != queue.name:
        raise api_error("not_supported", "this server cannot rename queues", queue=queue.name)
    if "tags" in call.data:
        wanted = [str(t) for t in call.get_list("tags")]
        call.ctx.plane.tag_queue(queue.name, add=wanted, remove=[t for t in queue.tags if t not in wanted])
        fields["tags"] = wanted
    extra = call.ctx.plane.get_document(KIND, queue_id(queue.name)) or {}
    for key in ("system_tags", "metadata", "display_name"):
        if key in call.data:
            extra[key] = call.data[key]
            fields[key] = call.data[key]
    call.ctx.plane.put_document(KIND, queue_id(queue.name), extra)
    return {"updated": 1, "fields": fields}


@endpoint("queues.delete")
def delete(call: Call) -> dict[str, Any]:
    queue = _queue(call)
    if queue.tasks and not call.data.get("force"):
        raise api_error("queue_not_empty", "remove its tasks, or use force", queue=queue_id(queue.name))
    call.ctx.plane.delete_queue(queue.name, force=True)
    call.ctx.plane.delete_document(KIND, queue_id(queue.name))
    call.ctx.queues.refresh()
    return {"deleted": 1}


@endpoint("queues.get_next_task")
def get_next_task(call: Call) -> dict[str, Any]:
    """Hand the head of the queue to the calling worker, exactly once (who that is:
    :class:`~clearml_core.server.context.WorkerIds`)."""
    call.require("queue")
    name = call.ctx.queues.name(call.get_str("queue"))
    worker = call.ctx.workers.resolve(call.worker, call.address, call.user.user, name)
    task = call.ctx.plane.pop([name], worker)
    if task is None:
        return {}
    result: dict[str, Any] = {"entry": {"task": task.id, "added": iso(task.queued)}}
    if call.data.get("get_task_info"):
        result["task_info"] = {
            "company": task.attributes.get("company") or call.ctx.settings.company_id,
            "user": task.attributes.get("user"),
        }
    return result


@endpoint(WAIT_FOR_TASKS)
def wait_for_tasks(call: Call) -> dict[str, Any]:
    """Hold the call until one of ``queues`` (ids or names) may hold a task (``ready: true``; take
    it with ``queues.get_next_task``, someone may be faster) or ``timeout`` seconds passed
    (``ready: false``; at most :data:`MAX_WAIT_SEC`, that long when not given).

    The control plane does the waiting (SQLite watches its file, Redis blocks on its doorbells), so
    an enqueue by any process that serves it ends the wait; a stopping server ends it too.
    """
    if not call.ctx.settings.wait_for_tasks:
        raise api_error("not_supported", "turned off by apiserver.clearml_core.wait_for_tasks")
    wanted = call.get_list("queues")
    if not wanted:
        raise api_error("missing_required_fields", fields=["queues"])
    if not all(isinstance(queue, str) and queue for queue in wanted):
        raise api_error("fields_type_error", "queues must be a list of queue ids", field="queues")
    timeout = call.data.get("timeout", MAX_WAIT_SEC)
    if (
        isinstance(timeout, bool)
        or not isinstance(timeout, (int, float))
        or not math.isfinite(timeout)
        or timeout < 0
    ):
        raise api_error("validation_error", "timeout must be a number of seconds, 0 or more", timeout=timeout)
    names = list(dict.fromkeys(call.ctx.queues.name(queue) for queue in wanted))
    ready = call.ctx.plane.wait_for_tasks(names, min(float(timeout), MAX_WAIT_SEC), cancel=call.ctx.stopping)
    return {"ready": ready}


@endpoint("queues.get_num_entries")
def get_num_entries(call: Call) -> dict[str, Any]:
    return {"num": len(_queue(call).tasks)}


@endpoint("queues.peek_task")
def peek_task(call: Call) -> dict[str, Any]:
    queue = _queue(call)
    return {"task": queue.tasks[0] if queue.tasks else None}


@endpoint("queues.add_task")
def add_task(call: Call) -> dict[str, Any]:
    call.require("task")
    queue = _queue(call)
    call.ctx.plane.enqueue(call.get_str("task"), queue.name)
    return {"added": 1}


@endpoint("queues.remove_task")
def remove_task(call: Call) -> dict[str, Any]:
    call.require("task")
    queue = _queue(call)
    task_id = call.get_str("task")
    if task_id not in queue.tasks:
        raise api_error("invalid_queue_or_task_not_queued", queue=call.get_str("queue"), task=task_id)
    call.ctx.plane.dequeue(task_id)
    return {"removed": 1}


def _move(call: Call, *, front: bool) -> dict[str, Any]:
    call.require("task")
    queue = _queue(call)
    task_id = call.get_str("task")
    if task_id not in queue.tasks:
        raise api_error("invalid_queue_or_task_not_queued", queue=call.get_str("queue"), task=task_id)
    task = call.ctx.plane.get_task(task_id)
    if task.status != TaskStatus.QUEUED:
        raise api_error("invalid_queue_or_task_not_queued", queue=call.get_str("queue"), task=task_id)
    call.ctx.plane.dequeue(task_id)
    call.ctx.plane.enqueue(task_id, queue.name, front=front)
    if task.status_reason:  # moving it within its queue keeps why it is there
        call.ctx.plane.update_task(task_id, status_reason=task.status_reason)
    return {"position": 0 if front else len(queue.tasks) - 1}


@endpoint("queues.move_task_to_front")
def move_task_to_front(call: Call) -> dict[str, Any]:
    return _move(call, front=True)


@endpoint("queues.move_task_to_back")
def move_task_to_back(call: Call) -> dict[str, Any]:
    return _move(call, front=False)
