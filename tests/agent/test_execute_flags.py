"""clearml-agent's ``execute`` flags with clearml-agent's meaning, through the real command:
``--log-file``, ``--disable-monitoring``, ``--full-monitoring``, ``--require-queue``.
(``--standalone-mode``, ``-O`` and the git flags are tested with the daemon's.)"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from clearml_core.controlplane import ControlPlane, TaskStatus

from ..helpers import run_cli
from .conftest import Tasks, log_lines, wait_for


def test_log_file_gets_the_tasks_output_too(plane: ControlPlane, tasks: Tasks, tmp_path: Path) -> None:
    task = tasks.create("import sys\nprint('to stdout')\nprint('to stderr', file=sys.stderr)\n")
    log_file = tmp_path / "logs" / "task.txt"
    result = run_cli("agent", "execute", "--id", task.id, "--log-file", str(log_file), "--quiet")
    assert result.code == 0, result.text
    written = log_file.read_text().splitlines()
    assert "to stdout" in written and "to stderr" in written
    assert "clearml-core: task completed" in written
    assert "to stdout" in log_lines(plane, task.id)  # the control plane still gets it

    blocked = tmp_path / "a-file"
    blocked.write_text("")
    other = tasks.create("print(1)")
    refused = run_cli("agent", "execute", "--id", other.id, "--log-file", str(blocked / "task.txt"))
    assert refused.code == 2 and f"--log-file {blocked / 'task.txt'}: cannot write it" in refused.err
    assert plane.get_task(other.id).status == TaskStatus.CREATED  # refused before it ran


@pytest.mark.parametrize("monitoring", ["--disable-monitoring", "--full-monitoring"])
def test_monitoring_flags_decide_what_the_worker_reports(
    plane: ControlPlane, tasks: Tasks, clearml_conf: Path, tmp_path: Path, monitoring: str
) -> None:
    clearml_conf.write_text("agent.report_period_sec: 0.2\n")
    plane.create_queue("q")
    release = tmp_path / "release"
    script = (
        "import pathlib, sys, time\nprint('ready', flush=True)\n"
        f"release = pathlib.Path({str(release)!r})\ndeadline = time.time() + 60\n"
        "while not release.exists() and time.time() < deadline:\n    time.sleep(0.05)\n"
    )
    task = tasks.create(script, queue="q")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "clearml_core.cli.main",
            "agent",
            "execute",
            "--id",
            task.id,
            monitoring,
            "--quiet",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "CLEARML_WORKER_TAGS": "gpu-box 'team a'"},
    )
    try:
        assert wait_for(lambda: "ready" in log_lines(plane, task.id), 30)
        worker_id = plane.get_task(task.id).worker
        assert worker_id is not None

        def beaten() -> bool:  # a heartbeat after the registration came in
            worker = plane.get_worker(worker_id)
            return bool(
                worker.last_heartbeat and worker.registered and worker.last_heartbeat > worker.registered
            )

        assert wait_for(beaten, 10)
        worker = plane.get_worker(worker_id)
        if monitoring == "--disable-monitoring":
            assert worker.machine_stats == {} and "tags" not in worker.info
            assert "version" not in worker.info and worker.queues == []
        else:
            assert wait_for(lambda: "cpu_percent" in plane.get_worker(worker_id).machine_stats, 10)
            assert worker.info["tags"] == ["gpu-box", "team a"]
            assert worker.info["monitoring"] == "full" and worker.info["execution_environment"] == "venv"
            assert worker.info["version"] and worker.queues == ["q"]
        release.touch()
        assert process.wait(30) == 0
    finally:
        release.touch()
        if process.poll() is None:
            process.kill()
    assert plane.get_task(task.id).status == TaskStatus.COMPLETED
    assert plane.list_workers() == []
    both = run_cli("agent", "execute", "--id", task.id, "--disable-monitoring", "--full-monitoring")
    assert both.code == 2 and "give one" in both.err


def test_require_queue_runs_only_a_queued_task(plane: ControlPlane, tasks: Tasks) -> None:
    task = tasks.create("print('ran')")
    refused = run_cli("agent", "execute", "--id", task.id, "--require-queue")
    assert refused.code == 2, refused.text
    assert refused.err.strip() == (
        f"error: task {task.id} is not queued (it is created); "
        "--require-queue runs a task only while it waits in a queue"
    )
    assert plane.get_task(task.id).status == TaskStatus.CREATED
    plane.enqueue(task.id, "default")
    result = run_cli("agent", "execute", "--id", task.id, "--require-queue", "--quiet")
    assert result.code == 0, result.text
    assert plane.get_task(task.id).status == TaskStatus.COMPLETED
    assert plane.get_queue("default").tasks == []
    clone = run_cli("agent", "execute", "--id", task.id, "--require-queue", "--clone")
    assert clone.code == 2 and "cannot go with --clone" in clone.err
