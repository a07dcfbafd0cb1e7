"""``--podman``: tasks in containers of a real podman, through its Docker-compatible API (the
session's podman service, see :func:`.engine.start_podman`). ``DOCKER_HOST`` names a socket nothing
listens on, so anything that reached for docker instead of podman would fail."""

from __future__ import annotations

import hashlib
import json
import signal
from pathlib import Path

import pytest

from clearml_core.controlplane import ControlPlane, TaskStatus
from tests.agent.conftest import Daemons, Tasks, log_lines
from tests.helpers import run_cli, wait_for

from .conftest import LABEL, DockerSetup
from .test_container import WAITING, assert_out_of_sight, release, running_container
from .test_lifecycle import FOREVER, containers_of, ended

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

SCRIPT = """
import os, sys
print("hello from", os.environ["CLEARML_DOCKER_IMAGE"], "task", os.environ["CLEARML_TASK_ID"])
print("to stderr", file=sys.stderr)
"""
TOKEN = "tok-p0dman-s3cr3t-4321"
GIT_PASS = "gitpass-p0dman-s3cr3t-8765"


def test_execute_runs_the_task_in_a_podman_container(
    podman: DockerSetup, plane: ControlPlane, tasks: Tasks
) -> None:
    task = tasks.create(SCRIPT)
    result = run_cli("agent", "execute", "--id", task.id, "--podman", podman.image, timeout=300)
    assert result.code == 0, result.text
    record = plane.get_task(task.id)
    lines = log_lines(plane, task.id)
    assert record.status == TaskStatus.COMPLETED, (record.status_reason, lines)
    assert f"hello from {podman.image} task {task.id}" in lines
    assert "to stderr" in lines
    assert record.runtime["execution_environment"] == "docker"
    assert record.runtime["container"]["image"] == podman.image


def test_a_daemon_with_podman_runs_a_queued_task(
    podman: DockerSetup, plane: ControlPlane, tasks: Tasks
) -> None:
    plane.create_queue("q")
    task = tasks.create(SCRIPT, queue="q")
    result = run_cli(
        "agent",
        "daemon",
        "--queue",
        "q",
        "--podman",
        podman.image,
        "--polling-interval",
        "0.1",
        "--stop-when-empty",
        timeout=300,
    )
    assert result.code == 0, result.text
    record = plane.get_task(task.id)
    assert record.status == TaskStatus.COMPLETED, (record.status_reason, result.text)
    assert f"hello from {podman.image} task {task.id}" in log_lines(plane, task.id)
    assert "cannot look for containers left by dead agents" not in result.text  # podman's were looked at


def test_abort_stops_and_removes_the_podman_container(
    podman: DockerSetup, plane: ControlPlane, tasks: Tasks, daemons: Daemons
) -> None:
    plane.create_queue("q")
    task = tasks.create(FOREVER, queue="q", args=["--ignore-term"])
    daemon = daemons.start("--queue", "q", "--podman", podman.image, "--polling-interval", "0.1")
    assert wait_for(lambda: "started" in log_lines(plane, task.id)), daemons.output()
    assert containers_of(podman, task.id)
    assert run_cli("task", "abort", task.id).code == 0
    assert wait_for(lambda: not containers_of(podman, task.id, running_only=False)), daemons.output()
    assert wait_for(lambda: ended(plane, task.id))
    record = plane.get_task(task.id)
    assert record.status == TaskStatus.STOPPED, record.status_reason
    assert daemon.poll() is None  # still serving
    daemon.send_signal(signal.SIGTERM)
    assert daemon.wait(60) == 0, daemons.output()


def test_a_secret_reaches_the_task_but_not_what_podman_shows_of_its_container(
    podman: DockerSetup, plane: ControlPlane, tasks: Tasks, daemons: Daemons, clearml_home: Path
) -> None:
    podman.configure(
        {"agent.git_pass": GIT_PASS, "agent.extra_docker_arguments": ["-e", f"MY_TOKEN={TOKEN}"]}
    )
    plane.create_queue("q")
    task = tasks.create(WAITING, queue="q")
    daemon = daemons.start(
        "--queue",
        "q",
        "--podman",
        podman.image,
        "--cpu-only",
        "--polling-interval",
        "0.1",
        "--stop-when-empty",
    )
    assert wait_for(lambda: "waiting" in log_lines(plane, task.id)), daemons.output()
    container = running_container(podman.client, task.id)
    try:
        assert container.labels[LABEL] == task.id
        assert_out_of_sight((TOKEN, GIT_PASS), container.attrs)
    finally:
        release(clearml_home, task.id)
    assert daemon.wait(120) == 0, daemons.output()
    record = plane.get_task(task.id)
    lines = log_lines(plane, task.id)
    assert record.status == TaskStatus.COMPLETED, (record.status_reason, lines)
    assert f"token {hashlib.sha256(TOKEN.encode()).hexdigest()}" in lines  # -e reached the task
    text = "\n".join(lines) + json.dumps(record.to_dict()) + daemons.output()
    assert TOKEN not in text and GIT_PASS not in text


def test_a_daemon_killed_with_9_leaves_a_podman_container_that_the_next_one_removes(
    podman: DockerSetup, plane: ControlPlane, tasks: Tasks, daemons: Daemons
) -> None:
    plane.create_queue("q")
    task = tasks.create(FOREVER, queue="q")
    first = daemons.start("--queue", "q", "--podman", podman.image, "--polling-interval", "0.1")
    assert wait_for(lambda: "started" in log_lines(plane, task.id)), daemons.output()
    first.send_signal(signal.SIGKILL)
    first.wait(30)
    assert containers_of(podman, task.id), "the container outlives its daemon until one starts again"
    second = daemons.start(
        "--queue", "q", "--podman", podman.image, "--polling-interval", "0.1", "--stop-when-empty"
    )
    assert second.wait(300) == 0, daemons.output(1)
    assert not containers_of(podman, task.id, running_only=False), daemons.output(1)
    assert "removed container" in daemons.output(1)


def test_gpus_reach_a_podman_container_as_nvidia_visible_devices(
    podman: DockerSetup, plane: ControlPlane, tasks: Tasks
) -> None:
    task = tasks.create("import os\nprint('gpus', os.environ.get('NVIDIA_VISIBLE_DEVICES'))\n")
    result = run_cli(
        "agent", "execute", "--id", task.id, "--podman", podman.image, "--gpus", "0,1", timeout=300
    )
    assert result.code == 0, result.text
    assert "gpus 0,1" in log_lines(plane, task.id)  # what podman's NVIDIA hook reads
