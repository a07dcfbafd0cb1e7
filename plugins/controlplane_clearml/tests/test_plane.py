"""What the conformance suite's clock-bound tests check besides the times, with the server's own
clock: list filters and order, a run's times and end, logs in order, workers and their runtime
properties. And what is the ClearML plane's own: how a task looks to ClearML's clients."""

from __future__ import annotations

import pytest

from clearml_core.controlplane import (
    DEFAULT_QUEUE,
    ControlPlane,
    InvalidTransitionError,
    Parameters,
    Requirements,
    Script,
    Task,
    TaskStatus,
    WorkerNotFoundError,
)
from clearml_core.errors import UserError
from clearml_core.testing.clearml_server import ApiClient, ClearMLServer


def new_task(plane: ControlPlane, name: str = "task", **fields: object) -> Task:
    return plane.create_task(Task(name=name, script=Script(folder="/src", entry_point="main.py"), **fields))


def running(plane: ControlPlane, worker: str = "w1") -> Task:
    plane.enqueue(new_task(plane).id, DEFAULT_QUEUE)
    task = plane.pop([DEFAULT_QUEUE], worker)
    assert task is not None
    return task


def test_list_filters_and_order(plane: ControlPlane) -> None:
    plane.create_queue("other")
    a = new_task(plane, "alpha train", project="p1")
    b = new_task(plane, "beta train", project="p2")
    c = new_task(plane, "gamma", project="p1")
    plane.enqueue(b.id, "other")
    plane.enqueue(c.id, DEFAULT_QUEUE)
    plane.pop([DEFAULT_QUEUE], "w9")

    def ids(tasks: list[Task]) -> list[str]:
        return [t.id for t in tasks]

    assert ids(plane.list_tasks()) == [a.id, b.id, c.id]
    assert ids(plane.list_tasks(status="created")) == [a.id]
    assert ids(plane.list_tasks(status=[TaskStatus.QUEUED, "in_progress"])) == [b.id, c.id]
    assert ids(plane.list_tasks(queue="other")) == [b.id]
    assert ids(plane.list_tasks(project="p1")) == [a.id, c.id]
    assert ids(plane.list_tasks(project="no such project")) == []
    assert ids(plane.list_tasks(name="train")) == [a.id, b.id]
    assert ids(plane.list_tasks(worker="w9")) == [c.id]
    assert ids(plane.list_tasks(limit=2)) == [a.id, b.id]
    with pytest.raises(UserError, match="status"):
        plane.list_tasks(status="running")


def test_a_run_has_its_times_worker_exit_code_and_last_lines(plane: ControlPlane) -> None:
    task = new_task(plane)
    assert task.created is not None and task.started is None
    queued = plane.enqueue(task.id, DEFAULT_QUEUE)
    assert (queued.status, queued.queue) == (TaskStatus.QUEUED, DEFAULT_QUEUE) and queued.queued
    popped = plane.pop([DEFAULT_QUEUE], "w1")
    assert popped is not None and (popped.status, popped.worker) == (TaskStatus.IN_PROGRESS, "w1")
    assert popped.started is not None and popped.started >= task.created
    assert plane.get_queue(DEFAULT_QUEUE).tasks == [] and plane.pop([DEFAULT_QUEUE], "w1") is None
    plane.append_logs(task.id, [f"line {i}" for i in range(80)])
    done = plane.set_status(task.id, TaskStatus.COMPLETED, exit_code=0, expected_worker="w1")
    assert (done.status, done.exit_code, done.worker) == (TaskStatus.COMPLETED, 0, "w1")
    assert done.ended is not None and done.ended >= popped.started
    assert done.last_log_lines[-1] == "line 79" and len(done.last_log_lines) == 50
    failed = running(plane)
    with pytest.raises(InvalidTransitionError, match="w2"):
        plane.set_status(failed.id, "failed", exit_code=3, expected_worker="w2")
    result = plane.set_status(failed.id, "failed", exit_code=3, reason="exit code 3", last_log_lines=["boom"])
    assert (result.exit_code, result.status_reason, result.last_log_lines) == (3, "exit code 3", ["boom"])
    assert plane.reset(failed.id).exit_code is None  # a reset forgets the run


def test_logs_in_order_by_seq_and_stream(plane: ControlPlane) -> None:
    task = running(plane)
    other = running(plane)
    assert plane.read_logs(task.id) == []
    assert plane.append_logs(task.id, ["a", "b"]) == 1
    assert plane.append_logs(task.id, ["err"], stream="stderr") == 2
    assert plane.append_logs(other.id, ["other"]) == 1
    assert plane.append_logs(task.id, ["c"], timestamp=1_700_000_123.5) == 3
    events = plane.read_logs(task.id)
    assert [(e.seq, e.stream, e.lines) for e in events] == [
        (1, "stdout", ["a", "b"]),
        (2, "stderr", ["err"]),
        (3, "stdout", ["c"]),
    ]
    assert events[2].timestamp == 1_700_000_123.5
    assert [e.seq for e in plane.read_logs(task.id, after=1)] == [2, 3]
    assert [e.seq for e in plane.read_logs(task.id, after=1, limit=1)] == [2]


def test_workers_register_report_and_go(plane: ControlPlane) -> None:
    plane.create_queue("a")
    plane.create_queue("b")
    worker = plane.register_worker("host:1", name="host", queues=["a", "b"])
    assert (worker.id, worker.queues) == ("host:1", ["a", "b"]) and worker.last_heartbeat
    plane.heartbeat("host:1", machine_stats={"cpu_usage": [12.5], "memory_used_gb": 1.5})
    stored = plane.get_worker("host:1")
    assert stored.machine_stats == {"cpu_usage": [12.5], "memory_used_gb": 1.5}
    assert stored.queues == ["a", "b"]
    plane.heartbeat("host:1", queues=["a"])
    assert plane.get_worker("host:1").queues == ["a"]
    plane.register_worker("host:2")
    assert [w.id for w in plane.list_workers()] == ["host:1", "host:2"]
    plane.unregister_worker("host:1")
    plane.unregister_worker("never-registered")
    assert [w.id for w in plane.list_workers()] == ["host:2"]
    with pytest.raises(WorkerNotFoundError):
        plane.get_worker("host:1")


def test_runtime_properties_are_set_kept_and_removed(plane: ControlPlane) -> None:
    plane.register_worker("w1")
    worker = plane.set_worker_runtime("w1", "force", "on", expires=plane.clock() + 3600)
    assert worker.runtime_properties["force"].value == "on"
    assert worker.runtime_properties["force"].expires is not None
    plane.set_worker_runtime("w1", "note", "kept")
    plane.register_worker("w1")  # a restart keeps them
    assert plane.get_worker("w1").runtime_properties["note"].value == "kept"
    plane.set_worker_runtime("w1", "note", None)
    assert "note" not in plane.get_worker("w1").runtime_properties
    with pytest.raises(WorkerNotFoundError):
        plane.set_worker_runtime("nobody", "force", "off")


def test_clearml_clients_see_the_task_in_clearml_fields(
    plane: ControlPlane, server_env: ClearMLServer
) -> None:
    task = plane.create_task(
        Task(
            name="seen by the sdk",
            project="team/vision",
            script=Script(
                repository="https://example.com/r.git", branch="main", commit="abc", entry_point="a.py"
            ),
            requirements=Requirements(pip=["numpy>=1"], conda="name: x"),
            parameters=Parameters(argv=["--lr", "0.1"]),
            tags=["t"],
        )
    )
    api = ApiClient(server_env.api_url, server_env.access_key, server_env.secret_key)
    api.login()
    doc = api.call("tasks.get_by_id", {"task": task.id}).data["task"]
    api.close()
    assert doc["name"] == "seen by the sdk" and doc["tags"] == ["t"]
    assert doc["script"]["repository"] == "https://example.com/r.git"
    assert doc["script"]["version_num"] == "abc" and doc["script"]["entry_point"] == "a.py"
    assert doc["script"]["requirements"]["pip"] == "numpy>=1"
    assert "clearml-core" in doc["configuration"]  # what ClearML has no field for
    again = plane.get_task(task.id)
    assert again.project == "team/vision" and again.requirements.conda == "name: x"
    assert again.parameters.argv == ["--lr", "0.1"]
