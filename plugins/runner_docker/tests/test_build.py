"""``agent build --docker``: images with a task's code and environment, then actually run."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from clearml_core.controlplane import ControlPlane, Requirements, TaskStatus
from tests.agent.conftest import Tasks, log_lines
from tests.environments.conftest import index_root  # noqa: F401  (fixture)
from tests.environments.support import IndexServer, serving
from tests.helpers import run_cli

from .conftest import DockerSetup
from .test_run import index_arguments

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

SCRIPT = "import alpha, os\nprint('alpha', alpha.VERSION, 'task', os.environ['CLEARML_TASK_ID'])\n"


@pytest.fixture
def index(index_root: Path) -> Iterator[IndexServer]:  # noqa: F811
    with serving(index_root) as server:
        yield server


@pytest.fixture
def images(docker: DockerSetup) -> Iterator[list[str]]:
    """Names of the images a test builds, removed after it."""
    names: list[str] = []
    yield names
    from docker.errors import ImageNotFound

    for name in names:
        with contextlib.suppress(ImageNotFound):
            docker.client.images.remove(name, force=True)


def build(task_id: str, target: str, *extra: str) -> dict:
    result = run_cli("agent", "build", "--id", task_id, "--target", target, "--json", *extra, timeout=600)
    assert result.code == 0, result.text
    return json.loads(result.out)


def run_image(docker: DockerSetup, name: str, home: Path, *command: str) -> str:
    """``docker run --rm --network host -v STATE:STATE NAME [COMMAND]``: its output."""
    state = str(home / ".clearml-core")
    output = docker.client.containers.run(
        name,
        list(command) or None,
        remove=True,
        network_mode="host",
        volumes=[f"{state}:{state}"],
        stdout=True,
        stderr=True,
    )
    return output.decode()


def test_reuse_task_and_clone_task_images_run_the_task_against_the_control_plane(
    docker: DockerSetup,
    plane: ControlPlane,
    tasks: Tasks,
    index: IndexServer,
    images: list[str],
    clearml_home: Path,
) -> None:
    docker.configure(
        {
            "agent.extra_docker_arguments": index_arguments(index.url),
            "agent.package_manager.pip_version": [],
            "agent.git_pass": "build-s3cr3t",
        }
    )
    task = tasks.create(SCRIPT, requirements=Requirements(pip=["alpha"]))

    images.append("clearml-test-reuse:1")
    built = build(task.id, "clearml-test-reuse:1", "--docker", docker.image, "--entry-point", "reuse_task")
    assert built["image"] == "clearml-test-reuse:1" and built["image_id"].startswith("sha256:")
    attrs = docker.client.images.get("clearml-test-reuse:1").attrs
    assert attrs["Config"]["Entrypoint"][1:] == ["agent", "execute", "--id", task.id, "--standalone-mode"]
    assert "build-s3cr3t" not in json.dumps(attrs)
    assert plane.get_task(task.id).status == TaskStatus.CREATED  # building runs nothing
    output = run_image(docker, "clearml-test-reuse:1", clearml_home)
    assert f"alpha 1.0 task {task.id}" in output, output
    record = plane.get_task(task.id)
    assert record.status == TaskStatus.COMPLETED, record.status_reason
    assert f"alpha 1.0 task {task.id}" in log_lines(plane, task.id)
    assert record.runtime["environment"]["source"] == "standalone"

    images.append("clearml-test-clone:1")
    build(task.id, "clearml-test-clone:1", "--docker", docker.image, "--entry-point", "clone_task")
    first = run_image(docker, "clearml-test-clone:1", clearml_home)
    second = run_image(docker, "clearml-test-clone:1", clearml_home)
    clones = [t for t in plane.list_tasks() if t.id != task.id]
    assert len(clones) == 2 and all(t.status == TaskStatus.COMPLETED for t in clones), [
        (t.status, t.status_reason) for t in clones
    ]
    assert {f"alpha 1.0 task {t.id}" for t in clones} <= set((first + second).splitlines())


def test_without_an_entry_point_the_image_holds_the_environment_and_no_secret(
    docker: DockerSetup,
    plane: ControlPlane,
    tasks: Tasks,
    index: IndexServer,
    images: list[str],
    clearml_home: Path,
) -> None:
    docker.configure(
        {
            "agent.extra_docker_arguments": index_arguments(index.url),
            "agent.package_manager.pip_version": [],
            "agent.git_pass": "build-s3cr3t",
        }
    )
    task = tasks.create(SCRIPT, requirements=Requirements(pip=["alpha"]))
    images.append("clearml-test-base:1")
    build(task.id, "clearml-test-base:1", "--docker", docker.image)
    output = run_image(
        docker,
        "clearml-test-base:1",
        clearml_home,
        "sh",
        "-c",
        "python -c 'import alpha, sys; print(alpha.VERSION, sys.prefix)'; cat /clearml-core/clearml.json",
    )
    assert output.startswith("1.0 /clearml-core/venv\n"), output
    assert "build-s3cr3t" not in output  # the image's configuration has no secret
    assert plane.get_task(task.id).status == TaskStatus.CREATED


def test_a_build_that_fails_says_why(
    docker: DockerSetup, plane: ControlPlane, tasks: Tasks, index: IndexServer
) -> None:
    docker.configure(
        {"agent.extra_docker_arguments": index_arguments(index.url), "agent.package_manager.pip_version": []}
    )
    task = tasks.create(SCRIPT, requirements=Requirements(pip=["no-such-package-xyz"]))
    result = run_cli(
        "agent",
        "build",
        "--id",
        task.id,
        "--target",
        "clearml-test-never:1",
        "--docker",
        docker.image,
        timeout=600,
    )
    assert result.code == 2, result.text
    assert (
        "building the image clearml-test-never:1 failed: installing the task's requirements failed"
        in result.err
    )
    assert "no-such-package-xyz" in result.err
    assert not docker.client.images.list(name="clearml-test-never")
