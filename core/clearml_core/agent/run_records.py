"""Run records: how ``agent daemon --stop`` and ``--status`` find the daemons of this user.

A daemon writes one small JSON file, named for its pid, into ``~/.clearml-core/agent/run/`` when
it has registered its worker (:func:`write_run_record`: worker id, queues, detached log, control
plane) and removes it when it exits. :func:`run_records` lists the daemons that are alive,
removing the records of dead ones (a killed daemon cannot remove its own); a pid counts as a
daemon only while it is a clearml-core process, so a pid reused by a stranger is never signalled.
:func:`stop_daemons` signals the chosen ones: SIGTERM drains, SIGUSR1 aborts the running tasks.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from clearml_core.agent.identity import agent_dir

RUN_RECORDS = "run"
"""The folder of the run records, under :func:`~clearml_core.agent.identity.agent_dir`."""


def is_agent_process(pid: int) -> bool:
    """Whether ``pid`` is a live clearml-core process (not a stranger that reused the pid)."""
    import psutil

    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        return any("clearml" in part for part in process.cmdline())
    except psutil.Error:
        return False


@dataclass(frozen=True)
class RunRecord:
    """A daemon of this user on this machine, as its run record describes it."""

    pid: int
    worker_id: str
    queues: list[str]
    log: str | None
    detached: bool
    path: Path
    control_plane: str = ""


def write_run_record(
    *, worker_id: str, queues: Sequence[str], log: str | None, control_plane: str, started: float
) -> Path:
    """Record this process as a running daemon; returns the file, which the daemon removes when it
    exits. ``log`` is the log file of a ``--detached`` daemon (None in the foreground)."""
    folder = agent_dir() / RUN_RECORDS
    folder.mkdir(parents=True, exist_ok=True)
    record = {
        "pid": os.getpid(),
        "worker_id": worker_id,
        "queues": list(queues),
        "log": log,
        "detached": log is not None,
        "control_plane": control_plane,
        "started": started,
    }
    path = folder / f"{os.getpid()}.json"
    path.write_text(json.dumps(record), encoding="utf-8")
    return path


def run_records() -> list[RunRecord]:
    """Daemons of this user that are alive (records of dead ones are removed)."""
    folder = agent_dir() / RUN_RECORDS
    records = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            record = RunRecord(
                int(data["pid"]),
                str(data.get("worker_id", "")),
                list(data.get("queues", [])),
                data.get("log"),
                bool(data.get("detached")),
                path,
                str(data.get("control_plane") or ""),
            )
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if is_agent_process(record.pid):
            records.append(record)
        else:
            with contextlib.suppress(OSError):
                path.unlink()
    return records


def stop_daemons(
    names: Sequence[str] = (), *, force: bool = False, worker: str | None = None, wait: float = 10.0
) -> list[tuple[RunRecord, bool]]:
    """Signal the daemons that ``names`` name (all when empty): a worker id, as clearml-agent's
    ``--stop WORKER_ID`` takes, or a queue the daemon serves. SIGTERM drains, ``force`` sends
    SIGUSR1 (abort the running tasks). Waits up to ``wait`` seconds; returns (record, exited)."""
    wanted = set(names)
    chosen = [
        record
        for record in run_records()
        if record.pid != os.getpid()
        and (not wanted or record.worker_id in wanted or wanted & set(record.queues))
        and (worker is None or record.worker_id == worker)
    ]
    for record in chosen:
        with contextlib.suppress(ProcessLookupError):
            os.kill(record.pid, signal.SIGUSR1 if force else signal.SIGTERM)
    deadline = time.monotonic() + wait
    pending = {record.pid for record in chosen}
    while pending and time.monotonic() < deadline:
        pending = {pid for pid in pending if is_agent_process(pid)}
        if pending:
            time.sleep(0.1)
    return [(record, record.pid not in pending) for record in chosen]


__all__ = ["RunRecord", "is_agent_process", "run_records", "stop_daemons", "write_run_record"]
