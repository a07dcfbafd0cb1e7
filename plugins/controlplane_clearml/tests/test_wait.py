"""Waiting for tasks on the ClearML control plane: the long poll ``clearml-core server`` announces
wakes at an enqueue and honours ``cancel``; a server that does not announce it is polled and
never sent the call; clearml-core's daemon takes a task far sooner than its polling interval."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from clearml_core_controlplane_clearml.plane import WAIT_FOR_TASKS, WAIT_SLICE_SEC, ClearMLControlPlane
from clearml_core_controlplane_clearml.session import ApiSession

from clearml_core.controlplane import DEFAULT_QUEUE, ControlPlane, Script, Task, TaskStatus
from clearml_core.testing.clearml_server import ApiClient, ClearMLServer, run_clearml_server
from tests.agent.conftest import Daemons
from tests.helpers import time_bound, wait_for
from tests.server.support import LocalServer, local_server


def enqueue_through_the_server(
    server: ClearMLServer | LocalServer, queue: str = DEFAULT_QUEUE
) -> tuple[str, float]:
    """Create and enqueue a task as ClearML's SDK would (plain API calls); its id and the time the
    enqueue was answered."""
    client = ApiClient(server.api_url, server.access_key, server.secret_key)
    client.login()
    task = str(client.call("tasks.create", {"name": "t", "type": "training"}).data["id"])
    queue_id = client.call("queues.get_all", {"name": f"^{queue}$"}).data["queues"][0]["id"]
    assert client.call("tasks.enqueue", {"task": task, "queue": queue_id}).status == 200
    enqueued = time.monotonic()
    client.close()
    return task, enqueued


class Waiter:
    """``plane.wait_for_tasks`` in a thread: what it returned, and when."""

    def __init__(self, plane: ControlPlane, *args: object, **kwargs: object) -> None:
        self.result: list[bool] = []
        self.returned = 0.0
        self.thread = threading.Thread(target=self._run, args=(plane, args, kwargs))
        self.thread.start()

    def _run(self, plane: ControlPlane, args: tuple, kwargs: dict) -> None:
        self.result.append(plane.wait_for_tasks(*args, **kwargs))
        self.returned = time.monotonic()

    def join(self) -> bool:
        self.thread.join(60)
        assert not self.thread.is_alive(), "wait_for_tasks did not return"
        return self.result[0]


def test_clearml_core_server_announces_the_long_poll(plane: ControlPlane) -> None:
    assert isinstance(plane, ClearMLControlPlane)
    assert plane.session.offers(WAIT_FOR_TASKS)
    assert WAIT_FOR_TASKS in plane.session.extensions


def test_the_wait_ends_promptly_at_an_enqueue_through_the_server(
    plane: ControlPlane, server_env: ClearMLServer
) -> None:
    plane.create_queue("other")
    # polls 60 s apart: only the long poll can notice the task sooner
    waiter = Waiter(plane, ["other", DEFAULT_QUEUE], 60, poll=60)
    time.sleep(0.3)  # let the wait begin (an enqueue before it is seen at once anyway)
    task_id, enqueued = enqueue_through_the_server(server_env)
    assert waiter.join() is True
    assert waiter.returned - enqueued < time_bound(1.0)
    popped = plane.pop(["other", DEFAULT_QUEUE], "w1")
    assert popped is not None and popped.id == task_id


def test_cancel_is_seen_within_a_slice(plane: ControlPlane) -> None:
    cancel = threading.Event()
    waiter = Waiter(plane, [DEFAULT_QUEUE], 60, cancel=cancel, poll=60)
    time.sleep(0.3)  # let a held call begin
    cancel.set()
    cancelled = time.monotonic()
    assert waiter.join() is False
    assert waiter.returned - cancelled < WAIT_SLICE_SEC + time_bound(1.0)


def test_queues_that_do_not_exist_yet_are_polled(plane: ControlPlane, server_env: ClearMLServer) -> None:
    assert plane.wait_for_tasks(["later"], 0.2, poll=0.05) is False
    waiter = Waiter(plane, ["later"], 60, poll=0.05)
    plane.create_queue("later")
    enqueue_through_the_server(server_env, "later")
    assert waiter.join() is True


@pytest.fixture
def plain_server(tmp_path: Path) -> Iterator[ClearMLServer]:
    """A ``clearml-core server`` with the long poll turned off: as ClearML's own server, it
    announces no extension; it logs every call (``--debug``)."""
    config = {"apiserver.conf": "clearml_core { wait_for_tasks: false }\n"}
    with run_clearml_server(tmp_path / "plain", roles=("api",), config=config, debug=True) as server:
        yield server


def test_a_server_that_does_not_announce_it_is_polled_and_never_sent_it(plain_server: ClearMLServer) -> None:
    session = ApiSession(plain_server.api_url, plain_server.access_key, plain_server.secret_key)
    plane = ClearMLControlPlane(session)
    try:
        assert not session.offers(WAIT_FOR_TASKS) and session.extensions == frozenset()
        started = time.monotonic()
        assert plane.wait_for_tasks([DEFAULT_QUEUE], 0.3, poll=0.05) is False
        assert time.monotonic() - started >= 0.3
        waiter = Waiter(plane, [DEFAULT_QUEUE], 60, poll=0.05)
        enqueue_through_the_server(plain_server)
        assert waiter.join() is True
    finally:
        plane.close()
    log = plain_server.log.read_text(errors="replace")
    assert "queues.get_all" in log, log[-3000:]  # the log records the calls the plane made
    assert WAIT_FOR_TASKS not in log


def test_a_server_that_stops_offering_it_is_polled(tmp_path: Path) -> None:
    with local_server(tmp_path / "server") as server:
        plane = ClearMLControlPlane(ApiSession(server.api_url, server.access_key, server.secret_key))
        assert plane.session.offers(WAIT_FOR_TASKS)
        # as if restarted with apiserver.clearml_core.wait_for_tasks off, the session still valid
        server.ctx.settings = dataclasses.replace(server.ctx.settings, wait_for_tasks=False)
        assert plane.wait_for_tasks([DEFAULT_QUEUE], 0.3, poll=0.05) is False
        assert not plane.session.offers(WAIT_FOR_TASKS)
        enqueue_through_the_server(server)
        assert plane.wait_for_tasks([DEFAULT_QUEUE], 30, poll=0.05) is True
        plane.close()


@pytest.fixture
def daemons(tmp_path: Path) -> Iterator[Daemons]:
    started = Daemons(tmp_path / "daemon-logs")
    yield started
    started.stop_all()


def test_an_idle_daemon_takes_a_task_long_before_its_polling_interval(
    plane: ControlPlane, clearml_conf: Path, tmp_path: Path, daemons: Daemons
) -> None:
    # polls and heartbeats a minute apart: only the long poll can start the task sooner
    clearml_conf.write_text("agent { polling_interval_sec: 60, report_period_sec: 60 }\n", encoding="utf-8")
    daemons.start("--queue", DEFAULT_QUEUE, env={"CLEARML_WORKER_ID": "long-poll-box"})
    assert wait_for(plane.list_workers, 30), daemons.output(0)
    project = tmp_path / "project"
    project.mkdir()
    (project / "main.py").write_text("print('picked up')\n", encoding="utf-8")
    task = plane.create_task(Task(name="x", script=Script(folder=str(project), entry_point="main.py")))
    # the daemon may start the task before enqueue's own read-back, and a ClearML record keeps
    # no queued time once started: the clock before enqueue stands in (same machine as the server)
    queued = time.time()
    plane.enqueue(task.id, DEFAULT_QUEUE)
    started = wait_for(lambda: plane.get_task(task.id).started, 30)
    assert started, daemons.output(0)
    assert plane.get_task(task.id).worker == "long-poll-box"
    assert started - queued < time_bound(2.0), daemons.output(0)  # the server stamps started
    done = wait_for(lambda: plane.get_task(task.id).status in (TaskStatus.COMPLETED, TaskStatus.FAILED), 120)
    assert done, daemons.output(0)
