"""The ``task`` / ``queue`` / ``worker`` / ``controlplane`` commands on Redis, as on SQLite, and an
idle daemon that takes a new task at once whatever its polling interval."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from clearml_core.controlplane import TaskStatus, open_control_plane
from plugins.controlplane_redis.tests.support import RedisServer
from plugins.controlplane_redis.tests.test_daemons import configure
from tests.agent.conftest import Daemons, log_lines, wait_for
from tests.helpers import run_cli


@pytest.fixture
def daemons(tmp_path: Path):  # type: ignore[no-untyped-def]
    started = Daemons(tmp_path / "daemon-logs")
    yield started
    started.stop_all()


def cli_json(*args: str) -> object:
    result = run_cli(*args, "--json")
    assert result.code == 0, result.text
    return json.loads(result.out)


def test_the_cli_works_unchanged_on_redis(
    redis_server: RedisServer, prefix: str, clearml_conf: Path, tmp_path: Path, daemons: Daemons
) -> None:
    configure(clearml_conf, redis_server.url(prefix), report_period_sec=0.3)
    project = tmp_path / "project"
    project.mkdir()
    (project / "train.py").write_text("print('hello from redis')\n", encoding="utf-8")
    assert run_cli("queue", "create", "gpu", "--tag", "force_workers:on").code == 0
    created = run_cli("task", "create", "--name", "train", "--folder", str(project), "--script", "train.py")
    assert created.code == 0, created.text
    task_id = created.out.strip()
    assert run_cli("task", "enqueue", task_id, "--queue", "gpu").code == 0
    queues = cli_json("queue", "list")
    assert [(q["name"], q["tasks"], q["tags"]) for q in queues] == [  # type: ignore[union-attr]
        ("default", [], []),
        ("gpu", [task_id], ["force_workers:on"]),
    ]

    daemon = daemons.start("--queue", "gpu", env={"CLEARML_WORKER_ID": "redis-box"})
    plane = open_control_plane()
    assert wait_for(lambda: plane.get_task(task_id).status == TaskStatus.COMPLETED, 60), daemons.output(0)
    logs = run_cli("task", "logs", task_id)
    assert logs.code == 0 and "hello from redis" in logs.out, logs.text
    workers = cli_json("worker", "list")
    assert wait_for(lambda: cli_json("worker", "list")[0]["machine_stats"], 30)  # type: ignore[index]
    assert [w["id"] for w in workers] == ["redis-box"]  # type: ignore[union-attr]
    assert run_cli("worker", "set-runtime", "redis-box", "force=off").code == 0, daemons.output(0)
    shown = cli_json("task", "show", task_id)
    assert shown["status"] == "completed" and shown["worker"] == "redis-box"  # type: ignore[index]
    daemon.send_signal(signal.SIGTERM)
    assert daemon.wait(60) == 0
    assert cli_json("worker", "list") == []

    clone = run_cli("task", "clone", task_id, "--queue", "gpu")
    assert clone.code == 0, clone.text
    copy_id = clone.out.strip()
    assert run_cli("task", "dequeue", copy_id).code == 0
    assert run_cli("task", "abort", copy_id).code == 0
    assert cli_json("task", "show", copy_id)["status"] == "stopped"  # type: ignore[index]
    unknown = run_cli("task", "show", "f" * 32)
    assert unknown.code == 2 and "no task with id" in unknown.err


def test_an_idle_daemon_takes_a_new_task_at_once(
    redis_server: RedisServer, prefix: str, clearml_conf: Path, tmp_path: Path, daemons: Daemons
) -> None:
    # polls and heartbeats a minute apart: only the blocking wait can start the task sooner
    configure(clearml_conf, redis_server.url(prefix), report_period_sec=60, polling_interval_sec=60)
    plane = open_control_plane()
    daemons.start("--queue", "default", env={"CLEARML_WORKER_ID": "idle-box"})
    assert wait_for(lambda: plane.list_workers(), 30)
    project = tmp_path / "project"
    project.mkdir()
    (project / "main.py").write_text("print('picked up')\n", encoding="utf-8")
    task = run_cli(
        "task", "create", "--name", "x", "--folder", str(project), "--script", "main.py", "--queue", "default"
    )
    assert task.code == 0, task.text
    task_id = task.out.strip()
    assert wait_for(lambda: "picked up" in log_lines(plane, task_id), 30), daemons.output(0)


def test_migrate_from_sqlite_to_redis(redis_server: RedisServer, prefix: str, tmp_path: Path) -> None:
    from clearml_core.controlplane import Script, Task
    from clearml_core.controlplane.sqlite import SQLiteControlPlane

    source = SQLiteControlPlane(tmp_path / "state.db")
    source.create_queue("gpu", tags=["force_workers:on"])
    waiting = [
        source.create_task(Task(name=f"t{i}", script=Script(folder="/src", entry_point="a.py")))
        for i in range(3)
    ]
    for task in waiting[:2]:
        source.enqueue(task.id, "gpu")
    target_url = redis_server.url(prefix)
    arguments = (
        "controlplane",
        "migrate",
        "--from",
        f"sqlite:///{tmp_path / 'state.db'}",
        "--to",
        target_url,
    )
    first = run_cli(*arguments, "--json")
    assert first.code == 0, first.text
    report = json.loads(first.out)
    assert report["to"] == target_url and len(report["tasks"]["copied"]) == 3
    target = open_control_plane(target_url)
    assert target.get_queue("gpu").tasks == [waiting[0].id, waiting[1].id]
    assert target.get_queue("gpu").tags == ["force_workers:on"]
    assert target.get_task(waiting[2].id).status == TaskStatus.CREATED
    second = run_cli(*arguments, "--json")
    assert json.loads(second.out)["tasks"]["existing"] == [t.id for t in waiting]
    popped = target.pop(["gpu"], "w")
    assert popped is not None and popped.id == waiting[0].id
    # an unreachable target: one line, exit 2, the source untouched
    from clearml_core.testing.servers import free_port

    dead = run_cli(
        "controlplane",
        "migrate",
        "--from",
        f"sqlite:///{tmp_path / 'state.db'}",
        "--to",
        f"redis://:pw-hidden-1234@127.0.0.1:{free_port()}/0",
    )
    assert dead.code == 2 and dead.err.count("\n") == 1 and "pw-hidden-1234" not in dead.err, dead.err


def test_doctor_shows_the_control_plane_without_its_password(
    guarded_redis: RedisServer, clearml_conf: Path
) -> None:
    from plugins.controlplane_redis.tests.conftest import PASSWORD

    configure(clearml_conf, guarded_redis.url("doc", password=PASSWORD))
    checks = {c["name"]: c for c in json.loads(run_cli("doctor", "--json").out)}
    plane = checks["control plane"]
    assert plane["status"] == "ok", plane
    assert plane["detail"].startswith(f"{guarded_redis.url('doc')} (from agent.control_plane, "), plane
    assert plane["detail"].endswith("; 1 queue(s))") and PASSWORD not in plane["detail"], plane
    configure(clearml_conf, guarded_redis.url("doc", password="not-the-password-77"))
    result = run_cli("doctor", "--json")
    assert result.code == 1 and "not-the-password-77" not in result.text and PASSWORD not in result.text
    plane = {c["name"]: c for c in json.loads(result.out)}["control plane"]
    assert plane["status"] == "error" and "refused the credentials" in plane["detail"], plane


def test_a_daemon_keeps_the_password_out_of_ps_its_log_and_its_run_record(
    guarded_redis: RedisServer, clearml_conf: Path, clearml_home: Path, daemons: Daemons
) -> None:
    import psutil

    from plugins.controlplane_redis.tests.conftest import PASSWORD

    configure(clearml_conf, guarded_redis.url("ps", password=PASSWORD), report_period_sec=0.3)
    daemon = daemons.start("--queue", "default", "--detached", env={"CLEARML_WORKER_ID": "ps-box"})
    assert daemon.wait(60) == 0, daemons.output(0)
    plane = open_control_plane()
    assert wait_for(lambda: [w.id for w in plane.list_workers()] == ["ps-box"], 30)
    records = list((clearml_home / ".clearml-core").rglob("run/*.json"))
    assert records, "no run record"
    record = json.loads(records[0].read_text())
    assert record["control_plane"] == guarded_redis.url("ps")
    detached = psutil.Process(record["pid"])
    for process in [detached, *detached.children(recursive=True)]:
        assert PASSWORD not in " ".join(process.cmdline())
    log = Path(record["log"]).read_text() if record.get("log") else ""
    assert PASSWORD not in log + daemons.output(0)
    stop = run_cli("agent", "daemon", "--stop")
    assert stop.code == 0, stop.text
    assert PASSWORD not in stop.text
