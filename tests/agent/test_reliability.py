"""Reliability with real daemon processes: kill -9, many daemons on one queue, abort, timeout,
drain, detached daemons and --stop, and how fast output reaches ``task logs --follow``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

from clearml_core.controlplane import ControlPlane, TaskStatus

from ..helpers import PATIENCE, run_cli, time_bound
from .conftest import Daemons, Tasks, log_lines, wait_for

FAMILY = """
import os, pathlib, subprocess, sys, time
marker = pathlib.Path(os.environ["MARKER"])
if marker.exists():
    print("second run", flush=True)
    sys.exit(0)
marker.touch()
helper = subprocess.Popen(["sleep", "300"])
loner = subprocess.Popen(["sleep", "300"], start_new_session=True)
pathlib.Path(os.environ["PIDS"]).write_text(f"{os.getpid()} {helper.pid} {loner.pid}")
print("ready", flush=True)
time.sleep(300)
"""


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def family_pids(path: Path) -> list[int]:
    assert wait_for(lambda: path.exists() and len(path.read_text().split()) == 3, 30)
    return [int(pid) for pid in path.read_text().split()]


def test_kill_9_mid_task_then_the_worker_restarts(
    plane: ControlPlane, tasks: Tasks, daemons: Daemons, tmp_path: Path, clearml_conf: Path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("MARKER", str(tmp_path / "marker"))
    monkeypatch.setenv("PIDS", str(tmp_path / "pids"))
    plane.create_queue("q")
    for requeue in (False, True):
        (tmp_path / "marker").unlink(missing_ok=True)
        (tmp_path / "pids").unlink(missing_ok=True)
        clearml_conf.write_text(f"agent.watchdog.requeue: {str(requeue).lower()}\n")
        task = tasks.create(FAMILY, queue="q")
        env = {"CLEARML_WORKER_ID": "box-1"}
        daemon = daemons.start("--queue", "q", "--polling-interval", "0.1", env=env)
        pids = family_pids(tmp_path / "pids")
        assert all(alive(pid) for pid in pids)
        daemon.kill()
        daemon.wait(10)
        # the task's processes die with the daemon, those that left its group included
        assert wait_for(lambda: not any(alive(pid) for pid in pids)), [p for p in pids if alive(p)]
        assert plane.get_task(task.id).status == TaskStatus.IN_PROGRESS
        # the same worker starting again settles what its dead incarnation left
        restarted = run_cli(
            "agent", "daemon", "--queue", "q", "--stop-when-empty", "--polling-interval", "0.1", env=env
        )
        assert restarted.code == 0, restarted.text
        record = plane.get_task(task.id)
        if requeue:
            assert record.status == TaskStatus.COMPLETED and "second run" in log_lines(plane, task.id)
        else:
            assert record.status == TaskStatus.FAILED
            assert record.status_reason == "the worker box-1 restarted while the task was running"


def test_kill_9_of_a_daemon_with_a_derived_id_is_noticed_by_the_next_daemon(
    plane: ControlPlane, tasks: Tasks, daemons: Daemons, tmp_path: Path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("MARKER", str(tmp_path / "marker"))
    monkeypatch.setenv("PIDS", str(tmp_path / "pids"))
    plane.create_queue("q")
    task = tasks.create(FAMILY, queue="q")
    daemon = daemons.start("--queue", "q", "--polling-interval", "0.1")
    family_pids(tmp_path / "pids")
    daemon.kill()
    daemon.wait(10)
    other = run_cli("agent", "daemon", "--queue", "q", "--stop-when-empty", "--polling-interval", "0.1")
    assert other.code == 0, other.text
    record = plane.get_task(task.id)
    assert record.status == TaskStatus.FAILED
    assert f"(its process {daemon.pid} is gone)" in record.status_reason
    assert all(not w.id.endswith(f":{daemon.pid}") for w in plane.list_workers())


def test_four_daemons_two_hundred_tasks_each_runs_once(
    plane: ControlPlane, tasks: Tasks, daemons: Daemons, tmp_path: Path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    ledger = tmp_path / "ledger"
    monkeypatch.setenv("LEDGER", str(ledger))
    plane.create_queue("busy")
    folder = tasks.folder('echo "$CLEARML_TASK_ID $CLEARML_WORKER_ID" >> "$LEDGER"\n', name="run.sh")
    from clearml_core.controlplane import Script, Task

    ids = []
    for index in range(200):
        task = plane.create_task(
            Task(name=f"t{index}", script=Script(folder=str(folder), entry_point="run.sh"))
        )
        plane.enqueue(task.id, "busy")
        ids.append(task.id)
    workers = [
        daemons.start(
            "--queue",
            "busy",
            "--stop-when-empty",
            "--polling-interval",
            "0.2",
            env={"CLEARML_WORKER_ID": f"w{i}"},
        )
        for i in range(4)
    ]
    for worker in workers:
        assert worker.wait(300) == 0
    runs = [line.split() for line in ledger.read_text().splitlines()]
    ran = [task_id for task_id, _worker in runs]
    assert sorted(ran) == sorted(ids)  # every task, exactly once
    records = [plane.get_task(task_id) for task_id in ids]
    assert all(r.status == TaskStatus.COMPLETED for r in records)
    by_record = {r.id: r.worker for r in records}
    assert all(by_record[task_id] == worker for task_id, worker in runs)
    assert len({worker for _t, worker in runs}) > 1  # the work was shared


def test_task_abort_stops_a_running_task_within_two_seconds(
    plane: ControlPlane, tasks: Tasks, daemons: Daemons
) -> None:
    plane.create_queue("q")
    task = tasks.create(
        "import subprocess, time\nsubprocess.Popen(['sleep', '300'])\nprint('ready', flush=True)\ntime.sleep(300)\n",
        queue="q",
    )
    daemon = daemons.start("--queue", "q", "--polling-interval", "0.1")
    assert wait_for(lambda: "ready" in log_lines(plane, task.id), 30)
    processes = [  # the task's own, not another test's `sleep 300` elsewhere on the machine
        p for p in psutil.Process(daemon.pid).children(recursive=True) if p.cmdline()[:2] == ["sleep", "300"]
    ]
    assert processes
    result = run_cli("task", "abort", task.id, "--json")
    assert result.code == 0, result.text
    requested = json.loads(result.out)["last_update"]  # when the plane recorded the abort
    assert wait_for(lambda: plane.get_task(task.id).status == TaskStatus.STOPPED)
    record = plane.get_task(task.id)
    # an abort stops a running task within 2 s: from the abort to the stop, as the plane recorded both
    assert record.ended is not None and record.ended - requested < time_bound(2.0)
    assert record.status_reason == "aborted by user" and "ready" in record.last_log_lines
    assert not any(alive(p.pid) for p in processes)


def test_timeout_through_the_daemon(plane: ControlPlane, tasks: Tasks) -> None:
    plane.create_queue("q")
    task = tasks.create("import time\ntime.sleep(300)\n", queue="q", timeout=0.5)
    result = run_cli("agent", "daemon", "--queue", "q", "--stop-when-empty", "--polling-interval", "0.1")
    assert result.code == 0, result.text
    record = plane.get_task(task.id)
    assert record.status == TaskStatus.FAILED and record.status_reason.startswith("timeout")


def test_sigterm_drains(plane: ControlPlane, tasks: Tasks, daemons: Daemons, tmp_path: Path) -> None:
    plane.create_queue("q")
    release = tmp_path / "release"
    running = tasks.create(
        f"import pathlib, time\nprint('ready', flush=True)\nwhile not pathlib.Path({str(release)!r}).exists():\n    time.sleep(0.02)\nprint('finished')\n",
        queue="q",
    )
    waiting = tasks.create("print('must not run')", queue="q")
    daemon = daemons.start("--queue", "q", "--polling-interval", "0.1")
    assert wait_for(lambda: "ready" in log_lines(plane, running.id), 30)
    daemon.send_signal(signal.SIGTERM)
    assert wait_for(lambda: "finishing the running task" in daemons.output())
    assert daemon.poll() is None  # still finishing its task
    release.touch()
    assert daemon.wait(30) == 0
    assert plane.get_task(running.id).status == TaskStatus.COMPLETED
    assert "finished" in log_lines(plane, running.id)
    assert plane.get_task(waiting.id).status == TaskStatus.QUEUED
    assert plane.list_workers() == []


def test_detached_daemon_status_and_stop(
    plane: ControlPlane, tasks: Tasks, tmp_path: Path, clearml_home: Path
) -> None:
    plane.create_queue("bg")
    started = run_cli("agent", "daemon", "--queue", "bg", "--detached", "--polling-interval", "0.1")
    assert started.code == 0, started.text
    assert "daemon started in the background" in started.out
    assert f"control plane: {plane.url}" in started.out
    log_path = Path(started.out.split("log: ")[1].splitlines()[0])
    assert log_path.is_relative_to(clearml_home / ".clearml-core" / "agent" / "logs")
    status = run_cli("agent", "daemon", "--status", "--json")
    (record,) = json.loads(status.out)
    assert record["queues"] == ["bg"] and record["detached"] and record["log"] == str(log_path)
    try:
        task = tasks.create("print('in the background')", queue="bg")
        assert wait_for(lambda: plane.get_task(task.id).status == TaskStatus.COMPLETED, 30)
        assert "listening to bg" in log_path.read_text()
        stopped = run_cli("agent", "daemon", "--stop", "--queue", "bg")
        assert stopped.code == 0 and f"stopped daemon {record['worker_id']}" in stopped.out, stopped.text
        assert json.loads(run_cli("agent", "daemon", "--status", "--json").out) == []
        nothing = run_cli("agent", "daemon", "--stop")
        assert nothing.code == 2 and "no clearml-core daemon" in nothing.err
    finally:
        if psutil.pid_exists(record["pid"]):
            os.kill(record["pid"], signal.SIGKILL)


def test_stop_force_aborts_the_running_task(plane: ControlPlane, tasks: Tasks, daemons: Daemons) -> None:
    plane.create_queue("q")
    task = tasks.create("import time\nprint('ready', flush=True)\ntime.sleep(300)\n", queue="q")
    daemon = daemons.start("--queue", "q", "--polling-interval", "0.1")
    assert wait_for(lambda: "ready" in log_lines(plane, task.id), 30)
    stopped = run_cli("agent", "daemon", "--stop", "--force")
    assert stopped.code == 0, stopped.text
    assert daemon.wait(PATIENCE) == 0
    record = plane.get_task(task.id)
    assert record.status == TaskStatus.STOPPED
    assert record.status_reason == "aborted: the agent daemon was stopped with --stop --force"


def test_a_printed_line_reaches_the_control_plane_within_a_second(
    plane: ControlPlane, tasks: Tasks, daemons: Daemons
) -> None:
    plane.create_queue("q")
    script = (
        "import time\nfor i in range(3):\n    print(f'tick {time.time()}', flush=True)\n    time.sleep(1.5)\n"
    )
    task = tasks.create(script, queue="q")
    daemons.start("--queue", "q", "--polling-interval", "0.1")
    delays: dict[str, float] = {}  # line -> from its print to the test seeing it in the plane

    def every_tick_seen() -> bool:
        for line in log_lines(plane, task.id):
            if line.startswith("tick ") and line not in delays:
                delays[line] = time.time() - float(line.split()[1])
        return len(delays) == 3

    assert wait_for(every_tick_seen, interval=0.02), delays
    # a printed line reaches the control plane within a second
    assert max(delays.values()) < time_bound(1.0), delays


def test_follow_shows_the_output_while_the_task_runs(
    plane: ControlPlane, tasks: Tasks, daemons: Daemons
) -> None:
    plane.create_queue("q")
    task = tasks.create(
        "import time\nprint('first', flush=True)\ntime.sleep(1)\nprint('second')\n", queue="q"
    )
    daemons.start("--queue", "q", "--polling-interval", "0.1")
    follow = subprocess.run(
        [sys.executable, "-m", "clearml_core.cli.main", "task", "logs", task.id, "--follow"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert follow.returncode == 0, follow.stderr
    assert follow.stdout.index("first") < follow.stdout.index("second")
