"""Real ``clearml-core agent daemon`` processes sharing one Redis: a fleet where each task runs once,
a daemon killed mid-task whose task the others' watchdog re-queues once, a Redis restart the
daemons ride through, and a Redis gone for good."""

from __future__ import annotations

import re
import signal
import textwrap
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from clearml_core.controlplane import ControlPlane, Script, Task, TaskStatus, open_control_plane
from plugins.controlplane_redis.tests.support import RedisServer, fresh_prefix
from tests.agent.conftest import Daemons, log_lines, wait_for
from tests.helpers import run_cli

pytestmark = pytest.mark.slow


@pytest.fixture
def daemons(tmp_path: Path) -> Iterator[Daemons]:
    started = Daemons(tmp_path / "daemon-logs")
    yield started
    started.stop_all()


def configure(conf: Path, url: str, **agent: object) -> None:
    lines = [f'agent.control_plane: "{url}"']
    lines += [f"agent.{key}: {value}" for key, value in agent.items()]
    conf.write_text("\n".join(lines) + "\n", encoding="utf-8")


def script_task(plane: ControlPlane, folder: Path, source: str, queue: str, name: str = "t") -> Task:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "main.py").write_text(textwrap.dedent(source), encoding="utf-8")
    task = plane.create_task(Task(name=name, script=Script(folder=str(folder), entry_point="main.py")))
    return plane.enqueue(task.id, queue)


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def test_four_daemons_two_hundred_tasks_each_runs_once(
    redis_server: RedisServer,
    clearml_conf: Path,
    daemons: Daemons,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = redis_server.url(fresh_prefix("fleet"))
    configure(clearml_conf, url)
    ledger = tmp_path / "ledger"
    monkeypatch.setenv("LEDGER", str(ledger))
    plane = open_control_plane(url)
    plane.create_queue("busy")
    folder = tmp_path / "job"
    folder.mkdir()
    (folder / "run.sh").write_text(
        'echo "$CLEARML_TASK_ID $CLEARML_WORKER_ID" >> "$LEDGER"\n', encoding="utf-8"
    )
    ids = []
    for index in range(200):
        task = plane.create_task(
            Task(name=f"t{index}", script=Script(folder=str(folder), entry_point="run.sh"))
        )
        ids.append(plane.enqueue(task.id, "busy").id)
    workers = [
        daemons.start("--queue", "busy", "--stop-when-empty", env={"CLEARML_WORKER_ID": f"w{i}"})
        for i in range(4)
    ]
    for index, worker in enumerate(workers):
        assert worker.wait(600) == 0, daemons.output(index)
    runs = [line.split() for line in ledger.read_text().splitlines()]
    assert sorted(task_id for task_id, _worker in runs) == sorted(ids)  # every task, exactly once
    records = {task.id: task for task in plane.list_tasks()}
    assert all(records[task_id].status == TaskStatus.COMPLETED for task_id in ids)
    assert all(records[task_id].worker == worker for task_id, worker in runs)
    assert len({worker for _task, worker in runs}) > 1  # the work was shared
    assert plane.list_workers() == []  # each unregistered on its way out


KILLED_ONCE = """
import os, pathlib, subprocess, sys, time
runs = pathlib.Path(os.environ["RUNS"])
earlier = [line.split() for line in runs.read_text().splitlines()] if runs.exists() else []
with runs.open("a") as out:
    out.write(f"{os.getpid()} {os.environ['CLEARML_WORKER_ID']}\\n")
if earlier:
    overlap = [pid for pid, _w in earlier if os.path.exists(f"/proc/{pid}")]
    print(f"second run, overlapping with {overlap}", flush=True)
    sys.exit(0)
print("first run: waiting to be killed", flush=True)
time.sleep(300)
"""


def test_a_killed_daemons_task_is_requeued_once_by_the_watchdog_of_another(
    redis_server: RedisServer,
    clearml_conf: Path,
    daemons: Daemons,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = redis_server.url(fresh_prefix("kill"))
    # a silent worker is noticed after 2 s, the watchdog looks every second, and re-queues
    configure(
        clearml_conf,
        url,
        **{"watchdog.threshold_sec": 2, "watchdog.watch_interval_sec": 1, "watchdog.requeue": "true"},
        report_period_sec=0.3,
    )
    monkeypatch.setenv("RUNS", str(tmp_path / "runs"))
    plane = open_control_plane(url)
    plane.create_queue("q")
    doomed = daemons.start("--queue", "q", env={"CLEARML_WORKER_ID": "box-a"})
    assert wait_for(lambda: [w.id for w in plane.list_workers()] == ["box-a"], 30)
    task = script_task(plane, tmp_path / "job", KILLED_ONCE, "q")
    assert wait_for(lambda: "first run: waiting to be killed" in log_lines(plane, task.id), 60)
    survivor = daemons.start("--queue", "q", env={"CLEARML_WORKER_ID": "box-b"})
    assert wait_for(lambda: "box-b" in {w.id for w in plane.list_workers()}, 30)

    doomed.send_signal(signal.SIGKILL)
    doomed.wait(10)
    killed_at = time.monotonic()
    assert plane.get_task(task.id).status == TaskStatus.IN_PROGRESS  # not lost: held by the dead worker
    done = wait_for(lambda: plane.get_task(task.id).status == TaskStatus.COMPLETED, 60)
    assert done, (plane.get_task(task.id), daemons.output(1))
    recovered_in = time.monotonic() - killed_at

    record = plane.get_task(task.id)
    assert record.worker == "box-b"
    runs = (tmp_path / "runs").read_text().split("\n")
    assert [line.split()[1] for line in runs if line] == ["box-a", "box-b"]  # twice in all, never at once
    lines = log_lines(plane, task.id)
    assert "second run, overlapping with []" in lines
    assert lines.count("first run: waiting to be killed") == 1
    assert "re-queued" in daemons.output(1) or "requeued" in daemons.output(1)
    assert survivor.poll() is None
    print(f"task recovered and run again {recovered_in:.1f} s after the kill")


WAIT_FOR_GO = """
import os, pathlib, time
print("started", flush=True)
go = pathlib.Path(os.environ["GO"])
while not go.exists():
    time.sleep(0.05)
with open(os.environ["LEDGER"], "a") as ledger:
    ledger.write(os.environ["CLEARML_TASK_ID"] + "\\n")
for n in range(3):
    print(f"line {n}", flush=True)
"""


def test_daemons_ride_through_a_redis_restart(
    durable_redis: RedisServer,
    clearml_conf: Path,
    daemons: Daemons,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = durable_redis.url("restart")
    configure(clearml_conf, url, report_period_sec=0.5)
    monkeypatch.setenv("GO", str(tmp_path / "go"))
    monkeypatch.setenv("LEDGER", str(tmp_path / "ledger"))
    plane = open_control_plane(url)
    plane.create_queue("q")
    tasks = [script_task(plane, tmp_path / f"job{i}", WAIT_FOR_GO, "q", f"t{i}") for i in range(6)]
    workers = [daemons.start("--queue", "q", env={"CLEARML_WORKER_ID": f"box-{i}"}) for i in range(2)]
    running = wait_for(lambda: len(plane.list_tasks(status="in_progress")) == 2, 60)
    assert running, [daemons.output(i) for i in range(2)]
    assert wait_for(
        lambda: all("started" in log_lines(plane, t.id) for t in plane.list_tasks(status="in_progress")), 60
    )

    durable_redis.stop()
    (tmp_path / "go").touch()  # the two running tasks end while Redis is away
    for index in range(2):  # each daemon noticed, and its task ended, with Redis still away
        assert wait_for(
            lambda i=index: "lost the connection" in daemons.output(i) and " completed" in daemons.output(i),
            60,
        ), daemons.output(index)
    assert len((tmp_path / "ledger").read_text().split()) == 2
    assert all(worker.poll() is None for worker in workers)
    durable_redis.start()

    plane = open_control_plane(url)
    finished = wait_for(lambda: all(plane.get_task(t.id).status == TaskStatus.COMPLETED for t in tasks), 120)
    assert finished, [plane.get_task(t.id).status for t in tasks]
    ran = Counter((tmp_path / "ledger").read_text().split())
    assert ran == Counter({t.id: 1 for t in tasks})  # each ran once
    for task in tasks:
        assert log_lines(plane, task.id).count("line 2") == 1, log_lines(plane, task.id)  # each line once
        assert plane.get_task(task.id).last_log_lines[-1].startswith("clearml-core: task completed")
    assert wait_for(lambda: {w.id for w in plane.list_workers()} == {"box-0", "box-1"}, 30)
    for index, worker in enumerate(workers):
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(60) == 0, daemons.output(index)
        output = daemons.output(index)
        assert "Traceback" not in output, output


def test_redis_gone_for_good_is_a_clear_error_and_the_tasks_stay_recoverable(
    durable_redis: RedisServer,
    clearml_conf: Path,
    daemons: Daemons,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = durable_redis.url("gone")
    configure(
        clearml_conf,
        url,
        **{"redis.flush_timeout_sec": 2, "watchdog.requeue": "true"},
        report_period_sec=0.5,
    )
    monkeypatch.setenv("GO", str(tmp_path / "go"))
    monkeypatch.setenv("LEDGER", str(tmp_path / "ledger"))
    plane = open_control_plane(url)
    plane.create_queue("q")
    first = script_task(plane, tmp_path / "job1", WAIT_FOR_GO, "q", "first")
    daemon = daemons.start("--queue", "q", env={"CLEARML_WORKER_ID": "box-1"})
    assert wait_for(lambda: "started" in log_lines(plane, first.id), 60), daemons.output(0)
    second = script_task(plane, tmp_path / "job2", WAIT_FOR_GO, "q", "second")

    durable_redis.kill()
    listing = run_cli("task", "list")
    assert listing.code == 2, listing.text
    assert listing.err.count("\n") == 1 and listing.err.startswith(
        "error: cannot reach the Redis control plane at redis://127.0.0.1:"
    ), listing.err
    (tmp_path / "go").touch()
    assert wait_for(lambda: (tmp_path / "ledger").exists(), 60)  # the task ended while Redis is gone
    assert wait_for(lambda: "lost the connection to the Redis control plane" in daemons.output(0), 30)
    assert daemon.poll() is None  # the daemon waits for Redis to come back
    daemon.send_signal(signal.SIGTERM)
    assert daemon.wait(60) == 0
    output = daemons.output(0)
    assert re.search(rf"ERROR could not deliver \d+ report\(s\) about task\(s\) {first.id} ", output), output
    assert "Traceback" not in output, output

    # Redis comes back with its data: the interrupted task is there, in_progress on the dead worker,
    # the waiting one still waits; the worker coming back re-queues the first and runs both
    durable_redis.start()
    plane = open_control_plane(url)
    assert (plane.get_task(first.id).status, plane.get_task(first.id).worker) == (
        TaskStatus.IN_PROGRESS,
        "box-1",
    )
    assert plane.get_queue("q").tasks == [second.id]
    again = run_cli(
        "agent", "daemon", "--queue", "q", "--stop-when-empty", env={"CLEARML_WORKER_ID": "box-1"}
    )
    assert again.code == 0, again.text
    assert {plane.get_task(t.id).status for t in (first, second)} == {TaskStatus.COMPLETED}


def test_a_wrong_password_is_one_clear_line_without_the_secret(
    guarded_redis: RedisServer, clearml_conf: Path
) -> None:
    from plugins.controlplane_redis.tests.conftest import PASSWORD

    for url, expected in (
        (guarded_redis.url(password="wrong-pass-4242"), "refused the credentials"),
        (guarded_redis.url(), "needs a password"),
    ):
        configure(clearml_conf, url)
        for command in (("queue", "list"), ("worker", "list"), ("task", "list", "--json")):
            result = run_cli(*command)
            assert result.code == 2, result.text
            assert result.out == "" and result.err.count("\n") == 1, result.err
            assert expected in result.err and "wrong-pass-4242" not in result.err, result.err
    configure(clearml_conf, guarded_redis.url(password=PASSWORD))
    assert run_cli("queue", "create", "gpu").code == 0
    shown = run_cli("config", "show", "agent.control_plane")
    assert shown.code == 0 and PASSWORD not in shown.text and "****" in shown.text, shown.text
    # an ACL user (Redis 6+) with the password in agent.redis, not in the URL
    clearml_conf.write_text(
        f'agent.control_plane: "{guarded_redis.url()}"\n'
        f'agent.redis {{ username: "alice", password: "{PASSWORD}-alice" }}\n',
        encoding="utf-8",
    )
    listed = run_cli("queue", "list")
    assert listed.code == 0 and "gpu" in listed.out, listed.text
    shown = run_cli("config", "show", "agent.redis", "--json")
    assert f"{PASSWORD}-alice" not in shown.text, shown.text
