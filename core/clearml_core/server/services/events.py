"""``events.*``: a task's console log, over the control plane's task log.

A ``log`` event becomes a batch of lines in the task's log (``error``/``critical`` levels on the
``stderr`` stream, the rest on ``stdout``); consecutive events of one task and stream in a batch
are stored as one. Reading turns each stored batch back into one event. Metric, plot and image
events are accepted and counted, but this server keeps no metrics.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from typing import Any

from clearml_core.controlplane import LogEvent, TaskNotFoundError
from clearml_core.server.endpoints import Call, endpoint
from clearml_core.server.errors import api_error
from clearml_core.server.taskview import iso

ERROR_LEVELS = frozenset({"error", "critical", "fatal"})


def _stream(level: Any) -> str:
    return "stderr" if str(level or "").lower() in ERROR_LEVELS else "stdout"


def _timestamp(event: dict[str, Any], now: float) -> float:
    value = event.get("timestamp")
    if isinstance(value, (int, float)) and value > 0:
        return float(value) / 1000.0 if value > 10_000_000_000 else float(value)
    return now


def add_events(call: Call, events: Iterable[dict[str, Any]]) -> dict[str, Any]:
    plane = call.ctx.plane
    added = 0
    errors: dict[str, int] = {}
    group: tuple[str, str] | None = None
    lines: list[str] = []
    stamp = 0.0

    def flush() -> None:
        nonlocal added, lines
        if group is not None and lines:
            try:
                plane.append_logs(group[0], lines, stream=group[1], timestamp=stamp)
            except TaskNotFoundError:
                errors[f"invalid task id {group[0]}"] = errors.get(f"invalid task id {group[0]}", 0) + 1
        lines = []

    now = call.ctx.clock()
    for event in events:
        kind = event.get("type")
        task_id = str(event.get("task") or "")
        if not task_id:
            errors["event without a task"] = errors.get("event without a task", 0) + 1
            continue
        if kind != "log":
            added += 1
            continue
        key = (task_id, _stream(event.get("level")))
        if key != group:
            flush()
            group = key
        message = event.get("msg")
        lines.extend(str(message if message is not None else "").splitlines() or [""])
        stamp = _timestamp(event, now)
        added += 1
    flush()
    return {"added": added - sum(errors.values()), "errors": sum(errors.values()), "errors_info": errors}


@endpoint("events.add")
def add(call: Call) -> dict[str, Any]:
    return add_events(call, [call.data])


@endpoint("events.add_batch")
def add_batch(call: Call) -> dict[str, Any]:
    if not call.batch:
        raise api_error("batch_contains_no_items")
    return add_events(call, call.batch)


def _event(task_id: str, batch: LogEvent) -> dict[str, Any]:
    millis = int(batch.timestamp * 1000)
    return {
        "type": "log",
        "task": task_id,
        "timestamp": millis,
        "@timestamp": iso(batch.timestamp),
        "level": "error" if batch.stream == "stderr" else "info",
        "worker": "",
        "msg": "\n".join(batch.lines),
        "iter": 0,
        "metric": "",
        "variant": "",
        "seq": batch.seq,
    }


@endpoint("events.get_task_log", min_version="2.9")
def get_task_log(call: Call) -> dict[str, Any]:
    """The task's log, ``batch_size`` events at a time from ``from_timestamp`` (ms), either way."""
    call.require("task")
    task_id = call.get_str("task")
    batch_size = call.data.get("batch_size") or 500
    navigate_earlier = call.data.get("navigate_earlier", True) is not False
    start = call.data.get("from_timestamp")
    events = [_event(task_id, batch) for batch in call.ctx.plane.read_logs(task_id)]
    total = len(events)
    if navigate_earlier:
        if start is not None:
            events = [event for event in events if event["timestamp"] < start]
        chosen = events[-batch_size:]
        chosen.reverse()
    else:
        if start is not None:
            events = [event for event in events if event["timestamp"] > start]
        chosen = events[:batch_size]
    wanted = call.data.get("order")
    if (wanted == "asc" and navigate_earlier) or (wanted == "desc" and not navigate_earlier):
        chosen.reverse()
    return {"events": chosen, "returned": len(chosen), "total": total}


@endpoint("events.get_task_events")
def get_task_events(call: Call) -> dict[str, Any]:
    """The task's events in order, paged with ``scroll_id``; this server keeps ``log`` events only."""
    call.require("task")
    task_id = call.get_str("task")
    kind = call.get_str("event_type")
    batch_size = call.data.get("batch_size") or 500
    after = 0
    scroll = call.get_str("scroll_id")
    if scroll:
        try:
            after = int(base64.urlsafe_b64decode(scroll.encode()).decode())
        except ValueError:
            raise api_error("validation_error", "invalid scroll id", scroll_id=scroll) from None
    batches = (
        [] if kind not in ("", "log") else call.ctx.plane.read_logs(task_id, after=after, limit=batch_size)
    )
    events = [_event(task_id, batch) for batch in batches]
    if call.data.get("order") == "desc":
        events.reverse()
    last = batches[-1].seq if batches else after
    return {
        "events": events,
        "returned": len(events),
        "total": len(events),
        "scroll_id": base64.urlsafe_b64encode(str(last).encode()).decode(),
    }


@endpoint("events.get_task_plots")
def get_task_plots(call: Call) -> dict[str, Any]:
    return {"plots": [], "returned": 0, "total": 0, "scroll_id": None}


@endpoint("events.get_task_metrics")
def get_task_metrics(call: Call) -> dict[str, Any]:
    return {"metrics": []}


@endpoint("events.scalar_metrics_iter_histogram")
def scalar_metrics_iter_histogram(call: Call) -> dict[str, Any]:
    return {}


@endpoint("events.get_task_single_value_metrics")
def get_task_single_value_metrics(call: Call) -> dict[str, Any]:
    return {"tasks": []}
