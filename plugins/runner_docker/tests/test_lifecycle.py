"""How a task's container ends: abort, timeout, out of memory, a daemon killed with -9, and input
that cannot run (a missing image, unknown or forbidden arguments, an engine that is down, a
container that ends before the task starts). Each time: one clear reason on the task, no container
left (the ``no_leftovers`` fixture), and the daemon goes on serving."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest
from clearml_core_runner_docker.engine import labelled_containers

from clearml_core.controlplane import Container, ControlPlane, TaskStatus
from tests.agent.conftest import Daemons, Tasks, log_lines
from tests.helpers import run_cli, time_bound, wait_for

from .conftest import LABEL, DockerSetup

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

FOREVER = """
import signal, sys, time
if "--ignore-term" in sys.argv:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
print("started", flush=True)
while True:
    time.sleep(0.1)
"""


def containers_of(docker: DockerSetup, task_id: str, *, running_only: bool = True) -> list:
    return labelled_containers(docker.client, f"{LABEL}={task_id}", stopped_too=not running_only)


def ended(plane: ControlPlane, task_id: str) -> bool:
    return TaskStatus(plane.get_task(task_id).status).is_final


@pytest.mark.parametrize("ignore_term", [False, True], ids=["polite", "ignores-sigterm"])
def test_abort_stops_and_removes_the_container(
    docker: DockerSetup, plane: ControlPlane, tasks: Tasks, daemons: Daemons, ignore_term: bool
) -> None:
    plane.create_queue("q")
    task = tasks.create(FOREVER, queue="q", args=["--ignore-term"] if ignore_term else [])
    daemon = daemons.start("--queue", "q", "--docker", docker.image, "--polling-interval", "0.1")
    assert wait_for(lambda: "started" in log_lines(plane, task.id)), daemons.output()
    assert containers_of(docker, task.id)
    asked = time.monotonic()
    assert run_cli("agent", "--help").code == 0  # (the CLI works while a task runs)
    assert run_cli("task", "abort", task.id).code == 0
    assert wait_for(lambda: not containers_of(docker, task.id, running_only=False))
    assert time.monotonic() - asked < time_bound(10)
    assert wait_for(lambda: ended(plane, task.id))
    record = plane.get_task(task.id)
    assert record.status == TaskStatus.STOPPED, record.status_reason
    assert daemon.poll() is None  # still serving
    daemon.send_signal(signal.SIGTERM)
    assert daemon.wait(60) == 0


def test_a_timeout_stops_the_container_and_fails_the_task(
    docker: DockerSetup, plane: ControlPlane, tasks: Tasks
) -> None:
    task = tasks.create(FOREVER, timeout=3)
    result = run_cli("agent", "execute", "--id", task.id, "--docker", docker.image, timeout=300)
    assert result.code == 1, result.text
    record = plane.get_task(task.id)
    assert record.status == TaskStatus.FAILED
    assert record.status_reason.startswith("timeout: the task ran longer than its timeout of 3 s"), (
        record.status_reason
    )
    assert "started" in log_lines(plane, task.id)


def test_out_of_memory_is_the_reason(docker: DockerSetup, plane: ControlPlane, tasks: Tasks) -> None:
    hungry = "chunks = []\nprint('eating', flush=True)\nwhile True:\n    chunks.append(bytearray(16 << 20))\n"
    limits = ["--memory", "192m", "--memory-swap", "192m"]
    task = tasks.create(hungry, container=Container(image=docker.image, arguments=limits))
    result = run_cli("agent", "execute", "--id", task.id, "--docker", docker.image, timeout=300)
    assert result.code == 1, result.text
    record = plane.get_task(task.id)
    assert record.status == TaskStatus.FAILED
    assert record.status_reason.startswith(
        "out of memory: the container used all the memory it may (its limit is 192m)"
    )
    assert "eating" in log_lines(plane, task.id)


def test_a_daemon_killed_with_9_leaves_no_container_once_one_starts_again(
    docker: DockerSetup, plane: ControlPlane, tasks: Tasks, daemons: Daemons
) -> None:
    plane.create_queue("q")
    task = tasks.create(FOREVER, queue="q")
    first = daemons.start("--queue", "q", "--docker", docker.image, "--polling-interval", "0.1")
    assert wait_for(lambda: "started" in log_lines(plane, task.id)), daemons.output()
    first.send_signal(signal.SIGKILL)
    first.wait(30)
    assert containers_of(docker, task.id), "the container outlives its daemon until one starts again"
    later = tasks.create("print('next one')", queue="q")
    second = daemons.start(
        "--queue", "q", "--docker", docker.image, "--polling-interval", "0.1", "--stop-when-empty"
    )
    assert second.wait(300) == 0, daemons.output(1)
    assert not containers_of(docker, task.id, running_only=False)
    assert "removed container" in daemons.output(1)
    record = plane.get_task(task.id)
    assert record.status == TaskStatus.FAILED and "died while the task was running" in record.status_reason
    assert plane.get_task(later.id).status == TaskStatus.COMPLETED
    assert "next one" in log_lines(plane, later.id)


def test_input_that_cannot_run_fails_the_task_with_one_reason_and_the_daemon_goes_on(
    docker: DockerSetup, plane: ControlPlane, tasks: Tasks
) -> None:
    plane.create_queue("q")
    missing = tasks.create(
        "print(1)", queue="q", container=Container(image="clearml-core-test/no-such-image:1")
    )
    unknown = tasks.create(
        "print(1)", queue="q", container=Container(image=docker.image, arguments=["--frobnicate", "x"])
    )
    early = tasks.create(
        "print(1)",
        queue="q",
        container=Container(image=docker.image, setup_script="echo leaving early\nexit 7"),
    )
    forbidden = tasks.create(
        "print('ran anyway')",
        queue="q",
        container=Container(image=docker.image, arguments=["--entrypoint", "/bin/false"]),
    )
    fine = tasks.create("print('fine')", queue="q")
    result = run_cli(
        "agent",
        "daemon",
        "--queue",
        "q",
        "--docker",
        docker.image,
        "--polling-interval",
        "0.1",
        "--stop-when-empty",
        timeout=600,
    )
    assert result.code == 0, result.text

    def reason(task_id: str) -> str:
        record = plane.get_task(task_id)
        assert record.status == TaskStatus.FAILED, (record.status, record.status_reason)
        return record.status_reason

    assert reason(missing.id).startswith(
        "the image clearml-core-test/no-such-image:1 is not on this machine and pulling it failed: "
    )
    assert reason(unknown.id).startswith(
        "the docker argument --frobnicate is not one clearml-core passes to the engine"
    )
    assert reason(early.id) == "the container exited with code 7 before the task started: leaving early"
    assert plane.get_task(forbidden.id).status == TaskStatus.COMPLETED
    forbidden_log = log_lines(plane, forbidden.id)
    assert "ran anyway" in forbidden_log
    assert any("ignoring docker argument(s) --entrypoint" in line for line in forbidden_log)
    assert plane.get_task(fine.id).status == TaskStatus.COMPLETED


def test_an_engine_that_is_down_fails_each_task_and_the_daemon_goes_on(
    docker: DockerSetup, plane: ControlPlane, tasks: Tasks, daemons: Daemons, tmp_path: Path
) -> None:
    plane.create_queue("q")
    down = {"DOCKER_HOST": f"unix://{tmp_path}/no-engine.sock"}
    daemon = daemons.start("--queue", "q", "--docker", docker.image, "--polling-interval", "0.1", env=down)
    first = tasks.create("print(1)", queue="q")
    assert wait_for(lambda: ended(plane, first.id)), daemons.output()
    second = tasks.create("print(2)", queue="q")
    assert wait_for(lambda: ended(plane, second.id)), daemons.output()
    for task in (first, second):
        record = plane.get_task(task.id)
        assert record.status == TaskStatus.FAILED
        assert record.status_reason.startswith(
            f"the container engine at unix://{tmp_path}/no-engine.sock does not answer"
        )
        assert "start the docker engine" in record.status_reason
    assert daemon.poll() is None
    assert "cannot look for containers left by dead agents" in daemons.output()
    daemon.send_signal(signal.SIGTERM)
    assert daemon.wait(60) == 0
