"""A task in a container, end to end: the daemon in docker mode, a real engine, a package index on
127.0.0.1 that the container reaches through the host's network."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from clearml_core.controlplane import ControlPlane, Requirements, TaskStatus
from tests.agent.conftest import Tasks, log_lines
from tests.environments.conftest import index_root  # noqa: F401  (fixture)
from tests.environments.support import IndexServer, serving
from tests.helpers import run_cli

from .conftest import DockerSetup

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]
FAST = ("--polling-interval", "0.1", "--stop-when-empty")


@pytest.fixture
def index(index_root: Path) -> Iterator[IndexServer]:  # noqa: F811
    with serving(index_root) as server:
        yield server


def index_arguments(url: str) -> list[str]:
    """What points the installers in the container at the test's index, and nothing else."""
    return [
        *("-e", f"PIP_INDEX_URL={url}"),
        *("-e", f"UV_INDEX_URL={url}"),
        *("-e", "PIP_CONFIG_FILE=/dev/null"),
        *("-e", "UV_NO_CONFIG=1"),
    ]


SCRIPT = """
import os, sys
import alpha
print("alpha", alpha.VERSION, "in", os.environ["CLEARML_DOCKER_IMAGE"], "task", os.environ["CLEARML_TASK_ID"])
print("python", sys.executable)
print("worker", os.environ["CLEARML_WORKER_ID"])
print("to stderr", file=sys.stderr)
"""


def test_a_task_with_requirements_runs_in_its_container_and_the_next_one_reuses_the_environment(
    docker: DockerSetup, plane: ControlPlane, tasks: Tasks, index: IndexServer
) -> None:
    docker.configure(
        {"agent.extra_docker_arguments": index_arguments(index.url), "agent.package_manager.pip_version": []}
    )
    plane.create_queue("q")
    first = tasks.create(SCRIPT, queue="q", requirements=Requirements(pip=["alpha"]))
    result = run_cli("agent", "daemon", "--queue", "q", "--docker", docker.image, *FAST, timeout=600)
    assert result.code == 0, result.text
    record = plane.get_task(first.id)
    lines = log_lines(plane, first.id)
    assert record.status == TaskStatus.COMPLETED, (record.status_reason, lines)
    assert f"alpha 1.0 in {docker.image} task {first.id}" in lines
    assert "to stderr" in lines
    python = next(line for line in lines if line.startswith("python ")).split()[1]
    assert python.startswith("/root/.clearml/venvs-cache-clearml-core/envs/"), python  # the mounted cache
    assert {"alpha==1.0", "tinypkg==2.0"} <= set(record.requirements.frozen)
    runtime = record.runtime
    assert runtime["execution_environment"] == "docker"
    assert runtime["environment"]["source"] == "cache-build"
    assert runtime["container"]["image"] == docker.image and runtime["container"]["default_image"] is True
    assert [stage["name"] for stage in runtime["stages"]] == ["prepare_workdir", "run", "upload_outputs"]
    assert [stage["name"] for stage in runtime["container"]["stages"]] == [
        "prepare_workdir",
        "code",
        "environment",
        "run",
    ]
    assert record.container.image == docker.image  # the default image is recorded on the task

    second = tasks.create(SCRIPT, queue="q", requirements=Requirements(pip=["alpha"]))
    result = run_cli("agent", "daemon", "--queue", "q", "--docker", docker.image, *FAST, timeout=600)
    assert result.code == 0, result.text
    again = plane.get_task(second.id)
    assert again.status == TaskStatus.COMPLETED, again.status_reason
    assert again.runtime["environment"]["source"] == "cache-hit"
    assert f"python {python}" in log_lines(plane, second.id)
