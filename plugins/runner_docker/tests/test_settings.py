"""The docker keys of clearml.conf, each seen working in a real container: setup scripts and their
order, OpenCV's libraries, an image's own virtual environment, the image override, pulling, the
argument filters and precedence, host variables, the Kubernetes host mount, and the version of
clearml-core installed in the container."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest

from clearml_core.controlplane import (
    Container,
    ControlPlane,
    Requirements,
    Script,
    Task,
    TaskStatus,
    open_control_plane,
)
from tests.agent.conftest import Daemons, Tasks, log_lines
from tests.environments.conftest import index_root  # noqa: F401  (fixture)
from tests.environments.support import IndexServer, serving
from tests.helpers import run_cli, wait_for

from .conftest import LABEL, DockerSetup
from .test_run import index_arguments

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

PRINT_ENV = "import os, sys\nfor name in sys.argv[1:]:\n    print(name, os.environ.get(name))\n"


@pytest.fixture
def index(index_root: Path) -> Iterator[IndexServer]:  # noqa: F811
    with serving(index_root) as server:
        yield server


def execute(task_id: str, image: str, *extra: str, timeout: float = 300) -> None:
    result = run_cli("agent", "execute", "--id", task_id, "--docker", image, *extra, timeout=timeout)
    assert result.code == 0, result.text


def derived_image(docker: DockerSetup, tag: str, lines: list[str]) -> str:
    """An image made from the test image with ``lines`` of a Dockerfile (built locally, no registry)."""
    dockerfile = "\n".join([f"FROM {docker.image}", *lines]) + "\n"
    docker.client.images.build(fileobj=io.BytesIO(dockerfile.encode()), tag=tag, network_mode="host", rm=True)
    return tag


def test_setup_scripts_run_in_clearml_agents_order(
    docker: DockerSetup, plane: ControlPlane, tasks: Tasks
) -> None:
    docker.configure(
        {
            "agent.docker_preprocess_bash_script": ["echo step preprocess"],
            "agent.docker_init_bash_script": [
                "echo step init",
                "false",
                "echo step init after a failing line",
            ],
            "agent.extra_docker_shell_script": ["echo step extra"],
        }
    )
    task = tasks.create(
        "print('step task')",
        container=Container(image=docker.image, setup_script="echo step setup\n# a comment"),
    )
    execute(task.id, docker.image)
    steps = [line for line in log_lines(plane, task.id) if line.startswith("step ")]
    assert steps == [
        "step preprocess",
        "step init",
        "step init after a failing line",
        "step extra",
        "step setup",
        "step task",
    ]


def test_opencv_libraries_are_installed_when_missing_and_asked_for(
    docker: DockerSetup, plane: ControlPlane, tasks: Tasks, tmp_path: Path
) -> None:
    # apt-get is a stand-in that records what it was asked (the image has no registry to fetch from)
    image = derived_image(
        docker,
        "clearml-core-test-apt:1",
        [
            "RUN printf '#!/bin/sh\\necho apt-get \"$@\" >> /shared/apt.log\\n' > /usr/local/bin/apt-get "
            "&& chmod +x /usr/local/bin/apt-get"
        ],
    )
    try:
        shared = tmp_path / "shared"
        shared.mkdir()
        for install in (True, False):
            docker.configure(
                {
                    "agent.docker_install_opencv_libs": install,
                    "agent.extra_docker_arguments": ["-v", f"{shared}:/shared"],
                }
            )
            task = tasks.create("print('ran')")
            execute(task.id, image)
            assert plane.get_task(task.id).status == TaskStatus.COMPLETED
        asked = (shared / "apt.log").read_text().splitlines()
        assert asked == [
            "apt-get update -qq",
            "apt-get install -y -qq libsm6 libxext6 libxrender-dev libglib2.0-0",
        ]
    finally:
        docker.client.images.remove(image, force=True)


def test_an_images_activated_environment_gets_the_packages(
    docker: DockerSetup, plane: ControlPlane, tasks: Tasks, index: IndexServer
) -> None:
    image = derived_image(
        docker,
        "clearml-core-test-venv:1",
        ["RUN python3 -m venv /opt/imgvenv", "ENV VIRTUAL_ENV=/opt/imgvenv PATH=/opt/imgvenv/bin:$PATH"],
    )
    script = "import alpha, sys\nprint('alpha', alpha.VERSION, sys.prefix)\n"
    try:
        settings = {
            "agent.extra_docker_arguments": index_arguments(index.url),
            "agent.package_manager.pip_version": [],
        }
        docker.configure(settings)
        inside = tasks.create(script, requirements=Requirements(pip=["alpha"]))
        execute(inside.id, image)
        assert "alpha 1.0 /opt/imgvenv" in log_lines(plane, inside.id)
        assert plane.get_task(inside.id).runtime["environment"]["source"] == "image-venv"

        docker.configure({**settings, "agent.docker_use_activated_venv": False})
        beside = tasks.create(script, requirements=Requirements(pip=["alpha"]))
        execute(beside.id, image)
        record = plane.get_task(beside.id)
        assert record.runtime["environment"]["source"] == "cache-build", record.status_reason
    finally:
        docker.client.images.remove(image, force=True)


def test_override_pull_filters_precedence_and_host_variables(
    docker: DockerSetup, plane: ControlPlane, tasks: Tasks, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOST_VALUE", "from-the-host")
    docker.configure(
        {
            "agent.disable_task_docker_override": True,
            "agent.docker_force_pull": True,
            "agent.default_docker.arguments": [
                "-e",
                "KEEP=1",
                "--env=DROP=1",
                "-e",
                "WHO=default",
                "-e",
                "HOSTED=$HOST_VALUE",
            ],
            "agent.docker_args_filters": ["^-e$"],
            "agent.docker_allow_host_environ": True,
            "agent.extra_docker_arguments": ["-e", "WHO=extra", "-e", "EXTRA=$HOST_VALUE"],
        }
    )
    task = tasks.create(
        PRINT_ENV,
        args=["KEEP", "DROP", "WHO", "HOSTED", "EXTRA", "SETUP"],
        container=Container(
            image="clearml-core-test/not-here:1",
            arguments=["-e", "KEEP=task"],
            setup_script="export SETUP=ran",
        ),
    )
    execute(task.id, docker.image)
    lines = log_lines(plane, task.id)
    record = plane.get_task(task.id)
    assert record.status == TaskStatus.COMPLETED, (record.status_reason, lines)
    # the task's image and arguments gave way to the default ones; its setup script still ran
    assert [
        "KEEP 1",
        "DROP None",
        "WHO default",
        "HOSTED from-the-host",
        "EXTRA from-the-host",
        "SETUP ran",
    ] == [line for line in lines if line.split(" ")[0] in ("KEEP", "DROP", "WHO", "HOSTED", "EXTRA", "SETUP")]
    assert any(
        f"pulling {docker.image} failed" in line and "using the image this machine has" in line
        for line in lines
    )

    docker.configure(
        {
            "agent.default_docker.arguments": ["-e", "WHO=default"],
            "agent.extra_docker_arguments": ["-e", "WHO=extra"],
            "agent.docker_args_extra_precedes_task": False,
        }
    )
    later = tasks.create(PRINT_ENV, args=["WHO"])
    execute(later.id, docker.image)
    assert "WHO extra" in log_lines(plane, later.id)  # later arguments win, as on docker's command line


def test_the_agent_inside_can_come_from_the_index(
    docker: DockerSetup, plane: ControlPlane, tasks: Tasks, index: IndexServer
) -> None:
    docker.configure(
        {
            "agent.extra_docker_arguments": index_arguments(index.url),
            "agent.docker_agent_requirement": "clearml-core==9.9.9",
        }
    )
    task = tasks.create("print(1)")
    result = run_cli("agent", "execute", "--id", task.id, "--docker", docker.image, timeout=300)
    assert result.code == 1, result.text
    reason = plane.get_task(task.id).status_reason
    assert reason.startswith(
        "installing clearml-core==9.9.9 from the package index failed in the container: "
    ), reason


def test_kubernetes_host_mounts_are_translated(docker: DockerSetup, daemons: Daemons, tmp_path: Path) -> None:
    node = tmp_path / "node"
    node.mkdir()
    pod = tmp_path / "pod"
    pod.symlink_to(node)  # what the agent sees under pod/ the engine has under node/
    home = pod / "home"
    home.mkdir()
    state = pod / "state"
    conf = home / "clearml.conf"
    docker.conf = conf
    docker.cache = pod / "agent-cache"
    docker.configure(
        {
            "agent.control_plane": f"sqlite:///{state}/state.db",
            "agent.docker_pip_cache": str(tmp_path / "elsewhere"),
        }
    )
    env = {
        "HOME": str(home),
        "CLEARML_CONFIG_FILE": str(conf),
        "CLEARML_AGENT_K8S_HOST_MOUNT": f"{node}:{pod}",
        "CLEARML_AGENT_EXTRA_DOCKER_LABELS": "from-env=yes",
    }
    plane = open_control_plane(f"sqlite:///{state}/state.db")
    plane.create_queue("q")
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "main.py").write_text(
        "import os, pathlib, time\nprint('waiting', flush=True)\n"
        "release = pathlib.Path(os.environ['CLEARML_OUTPUT_DIR']).parent / 'release'\n"
        "deadline = time.monotonic() + 120\n"
        "while not release.exists() and time.monotonic() < deadline:\n    time.sleep(0.05)\n"
    )
    task = plane.enqueue(
        plane.create_task(Task(name="k8s", script=Script(folder=str(folder), entry_point="main.py"))).id, "q"
    )
    daemon = daemons.start(
        "--queue", "q", "--docker", docker.image, "--polling-interval", "0.1", "--stop-when-empty", env=env
    )
    assert wait_for(
        lambda: "waiting" in [line for event in plane.read_logs(task.id) for line in event.lines]
    ), daemons.output()
    container = docker.client.containers.list(filters={"label": f"{LABEL}={task.id}"})[0]
    sources = {mount["Destination"]: mount["Source"] for mount in container.attrs["Mounts"]}
    labels = container.attrs["Config"]["Labels"]
    (home / ".clearml-core" / "tasks" / task.id / "release").touch()
    assert daemon.wait(300) == 0, daemons.output()
    assert plane.get_task(task.id).status == TaskStatus.COMPLETED
    assert sources["/clearml-core/run"].startswith(str(node)) and sources[str(state)] == str(node / "state")
    assert "/root/.cache/pip" not in sources  # the pip cache is outside the mapped folder: left out
    lines = [line for event in plane.read_logs(task.id) for line in event.lines]
    assert any(f"{tmp_path / 'elsewhere'} is not under {pod}" in line for line in lines)
    assert labels["from-env"] == "yes"  # CLEARML_AGENT_EXTRA_DOCKER_LABELS
