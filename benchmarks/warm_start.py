"""Timing a task through a running daemon: from enqueueing it to the first line its script prints.

The script prints ``repr(time.time())`` first thing (``SCRIPT``); the time is read from the task's
log, so neither the log's delivery nor the task's end is part of it.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

SCRIPT = "import time; print(repr(time.time()), flush=True)\n"


def wait_for_worker(plane: Any, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not plane.list_workers():
        if time.monotonic() > deadline:
            sys.exit("the daemon did not register")
        time.sleep(0.1)


def first_line_ms(plane: Any, task_id: str, queue: str, kind: str) -> tuple[float, Any]:
    """Enqueue the task, wait for it to end; milliseconds to its first line, and its record."""
    from clearml_core.controlplane import TaskStatus

    time.sleep(0.3)  # the daemon back in its idle wait, as it would be
    enqueued = time.time()
    plane.enqueue(task_id, queue)
    first = None
    deadline = time.monotonic() + 300
    while first is None and time.monotonic() < deadline:
        for event in plane.read_logs(task_id):
            for line in event.lines:
                try:
                    first = float(line)
                    break
                except ValueError:
                    continue
            if first is not None:
                break
        time.sleep(0.01)
    while plane.get_task(task_id).status not in (TaskStatus.COMPLETED, TaskStatus.FAILED):
        if time.monotonic() > deadline:
            break
        time.sleep(0.05)
    record = plane.get_task(task_id)
    if first is None or record.status != TaskStatus.COMPLETED:
        sys.exit(f"the {kind} did not complete: {record.status_reason}")
    return (first - enqueued) * 1000, record


def add_stages(stages: dict[str, dict[str, list[float]]], kind: str, record: Any) -> None:
    """The milliseconds of each stage of the task's run, under ``kind``."""
    for stage in record.runtime.get("stages", []):
        stages.setdefault(kind, {}).setdefault(stage["name"], []).append(stage["seconds"] * 1000)


@contextlib.contextmanager
def environ(**values: str) -> Iterator[None]:
    """These variables set in this process (and what it starts) for the block."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextlib.contextmanager
def serving(plane: Any, queue: str, log: Path) -> Iterator[None]:
    """A daemon serving ``queue`` (this process's environment, its output in ``log``), registered
    before the block starts and stopped after it."""
    plane.create_queue(queue)
    with open(log, "wb") as output:
        daemon = subprocess.Popen(
            [sys.executable, "-m", "clearml_core.cli.main", "agent", "daemon", "--queue", queue,
             "--polling-interval", "1"],
            stdout=output, stderr=subprocess.STDOUT, env=dict(os.environ),
        )  # fmt: skip
        try:
            wait_for_worker(plane)
            yield
        finally:
            daemon.terminate()
            daemon.wait(30)
