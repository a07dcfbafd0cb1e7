"""Services mode in docker mode: each task in its own container, several at once, each with its own
status and log; stopping the daemon lets them finish and takes no new one."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from clearml_core_runner_docker.engine import labelled_containers, labels_of

from clearml_core.controlplane import ControlPlane, TaskStatus
from tests.agent.conftest import Daemons, Tasks, log_lines
from tests.helpers import wait_for

from .conftest import LABEL, DockerSetup

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

SERVICE = """
import os, pathlib, time
task = os.environ["CLEARML_TASK_ID"]
pathlib.Path("/shared", task + ".started").touch()
print("service", task, "as", os.environ["CLEARML_WORKER_ID"], flush=True)
deadline = time.monotonic() + 120
while not pathlib.Path("/shared/release").exists() and time.monotonic() < deadline:
    time.sleep(0.05)
print("done", task)
"""


def test_three_services_run_side_by_side_in_their_containers_and_drain_on_stop(
    docker: DockerSetup, plane: ControlPlane, tasks: Tasks, daemons: Daemons, tmp_path: Path
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    docker.configure({"agent.extra_docker_arguments": ["-v", f"{shared}:/shared"]})
    plane.create_queue("svc")
    services = [tasks.create(SERVICE, queue="svc", name=f"service{n}") for n in range(3)]
    daemon = daemons.start(
        "--queue", "svc", "--docker", docker.image, "--services-mode", "3", "--polling-interval", "0.1"
    )
    assert wait_for(lambda: len(list(shared.glob("*.started"))) == 3), daemons.output()
    running = labelled_containers(docker.client, LABEL, stopped_too=False)
    assert sorted(labels_of(c)[LABEL] for c in running) == sorted(t.id for t in services)

    daemon.send_signal(signal.SIGTERM)  # drain: the services finish, nothing new is taken
    late = tasks.create(SERVICE, queue="svc", name="late")
    (shared / "release").touch()
    assert daemon.wait(180) == 0, daemons.output()

    worker = plane.get_task(services[0].id).worker or ""
    for task in services:
        record = plane.get_task(task.id)
        lines = log_lines(plane, task.id)
        assert record.status == TaskStatus.COMPLETED, (record.status_reason, lines)
        assert f"service {task.id} as {worker}:service:{task.id}" in lines
        assert f"done {task.id}" in lines
        others = [t.id for t in services if t.id != task.id]
        assert not any(other in line for line in lines for other in others)  # each log is its own
    assert plane.get_task(late.id).status == TaskStatus.QUEUED
