"""The daemon: queue order, fairness, concurrency, GPUs, working hours, identity, heartbeats, the
watchdog and reloading the configuration. Loop behaviour is driven turn by turn with
``poll_once`` and an injected clock; flags are checked through the real command."""

from __future__ import annotations

import json
import os
import socket
import sys
from datetime import datetime
from pathlib import Path

import pytest

from clearml_core.agent.context import TaskContext
from clearml_core.agent.daemon import Daemon, DaemonOptions
from clearml_core.agent.gpus import parse_queue_requests
from clearml_core.agent.stages.environment import PythonEnvironment
from clearml_core.agent.stages.prepare_workdir import PrepareWorkdir
from clearml_core.agent.stages.run import RunEntryPoint
from clearml_core.cli.agent import expand_multi_value
from clearml_core.controlplane import ControlPlane, Task, TaskStatus
from clearml_core.settings import load_config

from ..helpers import run_cli
from .conftest import Daemons, Tasks, log_lines, wait_for

TUESDAY_NIGHT = datetime(2026, 11, 24, 23, 0)
TUESDAY_NOON = datetime(2026, 11, 24, 12, 0)


class Clock:
    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


def make_daemon(plane: ControlPlane, queues: list[str], **kwargs) -> Daemon:  # type: ignore[no-untyped-def]
    extra = {key: kwargs.pop(key) for key in ("clock", "now", "devices", "config") if key in kwargs}
    options = DaemonOptions(queues=queues, polling_interval=0.05, **kwargs)
    daemon = Daemon(options, config=extra.pop("config", None) or load_config(), plane=plane, **extra)
    daemon.start()
    return daemon


def run_all(daemon: Daemon) -> None:
    """Poll and wait until the daemon's queues are empty and nothing runs."""
    while daemon.poll_once():
        daemon.join()
    daemon.join()


def started_order(plane: ControlPlane, ids: list[str]) -> list[str]:
    records = [plane.get_task(task_id) for task_id in ids]
    assert all(r.status == TaskStatus.COMPLETED for r in records), [
        (r.name, r.status_reason) for r in records
    ]
    return [r.name for r in sorted(records, key=lambda r: r.started or 0)]


def test_queues_in_priority_order(plane: ControlPlane, tasks: Tasks) -> None:
    for name in ("high", "low"):
        plane.create_queue(name)
    ids = [tasks.create("print(1)", queue="low", name=f"low{i}").id for i in range(2)]
    ids += [tasks.create("print(1)", queue="high", name=f"high{i}").id for i in range(2)]
    daemon = make_daemon(plane, ["high", "low"])
    try:
        run_all(daemon)
    finally:
        daemon.close()
    assert started_order(plane, ids) == ["high0", "high1", "low0", "low1"]


def test_order_fairness_takes_the_queues_in_turn(plane: ControlPlane, tasks: Tasks) -> None:
    for name in ("a", "b"):
        plane.create_queue(name)
    ids = [tasks.create("print(1)", queue="a", name=f"a{i}").id for i in range(3)]
    ids += [tasks.create("print(1)", queue="b", name=f"b{i}").id for i in range(2)]
    daemon = make_daemon(plane, ["a", "b"], order_fairness=True)
    try:
        run_all(daemon)
    finally:
        daemon.close()
    assert started_order(plane, ids) == ["a0", "b0", "a1", "b1", "a2"]


def test_working_hours_and_their_overrides(plane: ControlPlane, tasks: Tasks) -> None:
    plane.create_queue("q")
    task = tasks.create("print(1)", queue="q")
    clock = Clock()
    moment = {"now": TUESDAY_NIGHT}
    daemon = make_daemon(plane, ["q"], uptime=["9-17 MON-FRI"], clock=clock, now=lambda: moment["now"])
    try:
        assert daemon.poll_once() == 0 and daemon.eligible_queues() == []
        moment["now"] = TUESDAY_NOON
        assert daemon.eligible_queues() == ["q"]
        moment["now"] = TUESDAY_NIGHT

        # the worker forced on until an expiry: seen at the next heartbeat
        plane.set_worker_runtime(daemon.worker_id, "force", "on", expires=clock.now + 600)
        clock.now += daemon.report_period
        daemon.report()
        assert daemon.eligible_queues() == ["q"]
        clock.now += 601
        assert daemon.eligible_queues() == []  # expired

        # a queue tag beats both
        plane.set_worker_runtime(daemon.worker_id, "force", "off", expires=None)
        plane.tag_queue("q", add=["force_workers:on"])
        clock.now += daemon.report_period
        assert daemon.poll_once() == 1
        daemon.join()
    finally:
        daemon.close()
    assert plane.get_task(task.id).status == TaskStatus.COMPLETED


def test_force_workers_off_holds_even_without_a_schedule(plane: ControlPlane, tasks: Tasks) -> None:
    plane.create_queue("q", tags=["force_workers:off"])
    plane.create_queue("other")
    tasks.create("print(1)", queue="q")
    daemon = make_daemon(plane, ["q", "other"])
    try:
        assert daemon.eligible_queues() == ["other"] and daemon.poll_once() == 0
    finally:
        daemon.close()


GPU_TASK = """
import os, pathlib, time
print("devices", os.environ["CUDA_VISIBLE_DEVICES"], flush=True)
go = pathlib.Path(os.environ["GO_FILE"])
while not go.exists():
    time.sleep(0.02)
"""


def test_dynamic_gpus_as_the_docs_describe(
    plane: ControlPlane, tasks: Tasks, tmp_path: Path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    # --dynamic-gpus --gpus 0-3 --queue dual=2 opportunistic=1-4
    go = tmp_path / "go"
    monkeypatch.setenv("GO_FILE", str(go))
    for name in ("dual", "opportunistic"):
        plane.create_queue(name)
    first_opp = tasks.create(GPU_TASK, queue="opportunistic", name="opp1")
    dual = tasks.create(GPU_TASK, queue="dual", name="dual")
    second_opp = tasks.create(GPU_TASK, queue="opportunistic", name="opp2")
    requests = parse_queue_requests(["dual=2", "opportunistic=1-4"])
    clock = Clock()
    daemon = make_daemon(
        plane,
        [r.queue for r in requests],
        queue_requests=requests,
        dynamic_gpus=True,
        devices=["0", "1", "2", "3"],
        clock=clock,
    )

    def devices(task: Task) -> str:
        line = next((line for line in log_lines(plane, task.id) if line.startswith("devices")), "")
        return line.split(" ", 1)[1] if line else ""

    try:
        assert daemon.poll_once() == 2  # dual first (priority), then the range takes what is left
        assert wait_for(lambda: devices(dual) and devices(first_opp))
        assert (devices(dual), devices(first_opp)) == ("0,1", "2,3")
        assert daemon.eligible_queues() == [] and daemon.poll_once() == 0
        assert plane.get_task(second_opp.id).status == TaskStatus.QUEUED
        clock.now += daemon.report_period
        daemon.poll_once()
        stats = plane.get_worker(daemon.worker_id).machine_stats
        assert stats["gpu_allocation"] == {"0": dual.id, "1": dual.id, "2": first_opp.id, "3": first_opp.id}
        assert daemon.worker_id.endswith(":dgpu")
        go.touch()
        daemon.join()
        assert daemon.poll_once() == 1
        daemon.join()
    finally:
        daemon.close()
    assert devices(second_opp) == "0,1,2,3"
    assert all(plane.get_task(t.id).status == TaskStatus.COMPLETED for t in (dual, first_opp, second_opp))


def test_heartbeats_carry_machine_stats(plane: ControlPlane) -> None:
    plane.create_queue("q")
    clock = Clock()
    daemon = make_daemon(plane, ["q"], clock=clock)
    try:
        worker = plane.get_worker(daemon.worker_id)
        assert worker.info["hostname"] == socket.gethostname() and worker.info["pid"] == os.getpid()
        assert worker.machine_stats == {}
        clock.now += daemon.report_period
        daemon.poll_once()
        stats = plane.get_worker(daemon.worker_id).machine_stats
        for key in ("cpu_percent", "memory_used_percent", "memory_total_gb", "disk_free_gb", "cpu_count"):
            assert key in stats
    finally:
        daemon.close()
    assert daemon.worker_id not in [w.id for w in plane.list_workers()]


def test_the_watchdog_runs_from_the_daemon(plane: ControlPlane, tasks: Tasks, clearml_conf: Path) -> None:
    clearml_conf.write_text("agent.watchdog { threshold_sec: 60, watch_interval_sec: 30 }\n")
    plane.create_queue("q")
    stale = tasks.create("print(1)", queue="q")
    plane.register_worker("elsewhere:1", info={"hostname": "another-machine", "pid": 1})
    plane.pop(["q"], "elsewhere:1")
    daemon = make_daemon(plane, ["other"], create_queue=True, config=load_config())
    try:
        daemon.poll_once()  # the first check happens at once; the task is fresh
        assert plane.get_task(stale.id).status == TaskStatus.IN_PROGRESS
        later = plane.clock() + 120
        plane.clock = lambda: later  # type: ignore[method-assign]
        daemon.poll_once()
    finally:
        daemon.close()
    record = plane.get_task(stale.id)
    assert record.status == TaskStatus.FAILED and "non-responsive" in record.status_reason


# -- through the command ----------------------------------------------------------------------


def test_multi_value_flags() -> None:
    assert expand_multi_value(["--queue", "a", "b", "--foreground"]) == [
        "--queue",
        "a",
        "--queue",
        "b",
        "--foreground",
    ]
    assert expand_multi_value(["--services-mode", "--queue", "q"]) == ["--services-mode", "0", "--queue", "q"]
    assert expand_multi_value(["--services-mode", "3", "q"]) == ["--services-mode", "3", "q"]
    assert expand_multi_value(["--docker"]) == ["--docker", ""]
    assert expand_multi_value(["--docker", "img", "-e"]) == ["--docker", "img", "-e"]
    assert expand_multi_value(["--uptime", "17-20 TUE", "1-10 mon-fri"]) == [
        "--uptime",
        "17-20 TUE",
        "--uptime",
        "1-10 mon-fri",
    ]
    assert expand_multi_value(["--queue=a", "b"]) == ["--queue", "a", "b"]


def test_stop_when_empty_and_a_missing_queue(plane: ControlPlane, tasks: Tasks) -> None:
    result = run_cli("agent", "daemon", "--queue", "nope", "--stop-when-empty")
    assert result.code == 2 and "no queue named 'nope'" in result.err and "Traceback" not in result.err
    result = run_cli(
        "agent",
        "daemon",
        "--queue",
        "made",
        "--create-queue",
        "--stop-when-empty",
        "--polling-interval",
        "0.1",
    )
    assert result.code == 0, result.text
    plane.get_queue("made")
    ids = [tasks.create("print('hi')", queue="made").id for _ in range(2)]
    result = run_cli(
        "agent", "daemon", "--queue", "made", "--stop-when-empty", "--polling-interval", "0.1", "--foreground"
    )
    assert result.code == 0, result.text
    assert result.out.count("hi") >= 2  # --foreground shows the tasks' output
    assert all(plane.get_task(i).status == TaskStatus.COMPLETED for i in ids)
    assert plane.list_workers() == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--queue", "a=2"], "add --dynamic-gpus"),
        (["--queue", "a", "--dynamic-gpus", "--gpus", "0"], "GPU count"),
        (["--queue", "a", "--cpu-only", "--gpus", "0"], "--cpu-only cannot go with"),
        (["--queue", "a", "--uptime", "1-2 MON", "--downtime", "3-4 MON"], "either uptime or downtime"),
        (["--queue", "a", "--uptime", "25 MON"], "outside 00-23"),
        (["--queue", "a=4", "--dynamic-gpus", "--gpus", "0,1"], "asks for 4 GPUs"),
        (["--force"], "--force goes with --stop"),
        ([], "name the queues"),
    ],
)
def test_bad_flags_are_one_line_errors(plane: ControlPlane, args: list[str], message: str) -> None:
    plane.create_queue("a")
    result = run_cli("agent", "daemon", *args)
    assert result.code == 2 and message in result.err, result.text
    assert "Traceback" not in result.err


def test_docker_without_a_plugin_says_it_is_not_available(plane: ControlPlane, tasks: Tasks) -> None:
    plane.create_queue("a")
    no_plugins = {"CLEARML_CORE_DISABLE_PLUGINS": "*"}
    said = "needs a docker execution environment: install it with pip install 'clearml-core[docker]'"
    result = run_cli("agent", "daemon", "--queue", "a", "--docker", "python:3.12", env=no_plugins)
    assert result.code == 2 and said in result.err, result.text
    task = tasks.create("print(1)")
    result = run_cli("agent", "execute", "--id", task.id, "--docker", env=no_plugins)
    assert result.code == 2 and said in result.err, result.text
    assert plane.get_task(task.id).status == TaskStatus.CREATED  # refused before it started


def test_services_mode_runs_tasks_side_by_side(plane: ControlPlane, tasks: Tasks, tmp_path: Path) -> None:
    plane.create_queue("svc")
    meeting = tmp_path / "meeting"
    meeting.mkdir()
    script = f"""
import os, pathlib, sys, time
here = pathlib.Path({str(meeting)!r})
(here / os.environ["CLEARML_TASK_ID"]).touch()
deadline = time.time() + 30
while len(list(here.iterdir())) < 3:
    if time.time() > deadline:
        sys.exit("the other tasks never ran at the same time")
    time.sleep(0.02)
"""
    ids = [tasks.create(script, queue="svc").id for _ in range(3)]
    result = run_cli(
        "agent",
        "daemon",
        "--queue",
        "svc",
        "--services-mode",
        "3",
        "--stop-when-empty",
        "--polling-interval",
        "0.1",
        timeout=90,
    )
    assert result.code == 0, result.text
    assert [plane.get_task(i).status for i in ids] == [TaskStatus.COMPLETED] * 3


def test_worker_identity(plane: ControlPlane, tasks: Tasks, daemons: Daemons) -> None:
    plane.create_queue("q")
    daemon = daemons.start(
        "--queue", "q", "--polling-interval", "0.1", env={"CLEARML_WORKER_ID": "station-7"}
    )
    assert wait_for(lambda: [w.id for w in plane.list_workers()] == ["station-7"])
    duplicate = run_cli("agent", "daemon", "--queue", "q", env={"CLEARML_WORKER_ID": "station-7"})
    assert duplicate.code == 2 and "already runs on this machine" in duplicate.err
    daemon.terminate()
    assert daemon.wait(20) == 0
    named = daemons.start(
        "--queue", "q", "--gpus", "0,1", "--polling-interval", "0.1", env={"CLEARML_WORKER_NAME": "rig"}
    )
    assert wait_for(lambda: [w.id for w in plane.list_workers()] == [f"rig:{named.pid}:gpu0,1"])
    worker = plane.list_workers()[0]
    assert worker.name == "rig" and worker.info["gpus"] == ["0", "1"]


def test_reload_config_between_tasks(plane: ControlPlane, tasks: Tasks, clearml_conf: Path) -> None:
    plane.create_queue("q")
    writer = f"import pathlib\npathlib.Path({str(clearml_conf)!r}).write_text('agent.reload_config: true\\nagent.enable_task_env: true\\n')\n"
    reader = "import os\nprint('FROM_TASK=' + str(os.environ.get('FROM_TASK')))\n"
    for reload in (False, True):
        clearml_conf.write_text(f"agent.reload_config: {str(reload).lower()}\n")
        first = tasks.create(writer, queue="q")
        second = tasks.create(reader, queue="q", env={"FROM_TASK": "applied"})
        result = run_cli("agent", "daemon", "--queue", "q", "--stop-when-empty", "--polling-interval", "0.1")
        assert result.code == 0, result.text
        assert plane.get_task(first.id).status == TaskStatus.COMPLETED
        expected = "FROM_TASK=applied" if reload else "FROM_TASK=None"
        assert expected in log_lines(plane, second.id)


def test_agent_execute(plane: ControlPlane, tasks: Tasks) -> None:
    task = tasks.create("import sys\nprint('executed', sys.argv[1:])\n", args=["x"])
    result = run_cli("agent", "execute", "--id", task.id)
    assert result.code == 0, result.text
    assert "executed ['x']" in result.out and f"task {task.id} completed" in result.out
    assert plane.get_task(task.id).status == TaskStatus.COMPLETED

    result = run_cli("agent", "execute", "--id", task.id, "--clone", "--json")
    assert result.code == 0, result.text
    outcome = json.loads(result.out)
    assert outcome["id"] != task.id and outcome["status"] == "completed"
    assert plane.get_task(outcome["id"]).parent == task.id

    failing = tasks.create("import sys; sys.exit(5)")
    result = run_cli("agent", "execute", "--id", failing.id, "--quiet")
    assert result.code == 5 and "failed: exit code 5" in result.out
    missing = run_cli("agent", "execute", "--id", "0" * 32)
    assert missing.code == 2 and "no task with id" in missing.err


def test_agent_execute_cannot_run_a_finished_task(plane: ControlPlane, tasks: Tasks) -> None:
    task = tasks.create("print(1)")
    assert run_cli("agent", "execute", "--id", task.id, "--quiet").code == 0
    again = run_cli("agent", "execute", "--id", task.id)
    assert again.code == 2 and "Traceback" not in again.err, again.text


def test_python_is_the_agents_own_without_requirements(plane: ControlPlane, tasks: Tasks) -> None:
    task = tasks.create("import sys; print('python', sys.executable)")
    assert run_cli("agent", "execute", "--id", task.id, "--quiet").code == 0
    assert f"python {sys.executable}" in log_lines(plane, task.id)


def test_agent_execute_heartbeats_while_the_task_runs(
    plane: ControlPlane, tasks: Tasks, clearml_conf: Path
) -> None:
    clearml_conf.write_text("agent.report_period_sec: 0.2\n")
    task = tasks.create("import time\nprint('ready', flush=True)\ntime.sleep(60)\n")
    import subprocess

    process = subprocess.Popen(
        [sys.executable, "-m", "clearml_core.cli.main", "agent", "execute", "--id", task.id, "--quiet"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert wait_for(lambda: "ready" in log_lines(plane, task.id), 30)
        worker = plane.get_task(task.id).worker
        assert worker is not None and worker.endswith(f":{process.pid}")
        assert wait_for(lambda: "cpu_percent" in plane.get_worker(worker).machine_stats, 10)
        assert plane.get_worker(worker).info["hostname"] == socket.gethostname()
        plane.abort(task.id)
        assert process.wait(30) == 1
    finally:
        if process.poll() is None:
            process.kill()
    assert plane.get_task(task.id).status == TaskStatus.STOPPED
    assert plane.list_workers() == []


class _Crashing:
    """A stage with a bug: what a broken plugin stage does to the agent."""

    name = "crashing"

    def run(self, ctx: TaskContext) -> None:
        if ctx.task.name == "bad":
            raise RuntimeError("boom")


@pytest.mark.parametrize("crash", [False, True])
def test_crash_on_exception(plane: ControlPlane, tasks: Tasks, clearml_conf: Path, crash: bool) -> None:
    clearml_conf.write_text(f"agent.crash_on_exception: {str(crash).lower()}\n", encoding="utf-8")
    plane.create_queue("q")
    bad = tasks.create("print(1)", queue="q", name="bad")
    good = tasks.create("print(2)", queue="q", name="good")
    stages = [PrepareWorkdir(), _Crashing(), PythonEnvironment(), RunEntryPoint()]
    options = DaemonOptions(queues=["q"], polling_interval=0.05, stop_when_empty=True)
    daemon = Daemon(options, config=load_config(), plane=plane, stages=stages)
    assert daemon.run() == (1 if crash else 0)
    assert plane.get_task(bad.id).status_reason == "internal error of the agent: RuntimeError: boom"
    # the bad task is recorded either way; only without crash_on_exception is the next one served
    assert plane.get_task(good.id).status == (TaskStatus.QUEUED if crash else TaskStatus.COMPLETED)
    assert plane.list_workers() == []
