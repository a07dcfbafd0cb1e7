"""Fixtures of the docker plugin's tests: a real engine, the test image, a configuration.

Every test runs against the engine of :mod:`.engine` (started here when none answers), in the
test image made without a registry. Containers reach the test's servers on 127.0.0.1 through the
host's network. The wheels of clearml-core and the agent environments made from them are shared
by the whole session (``agent.docker_agent_cache``), so only the first test pays for them. After
each test no container of clearml-core may be left on the engine.

The ``podman`` fixture is the same for ``--podman``: a podman service of this session (see
:func:`.engine.start_podman`), the same image in it, ``CONTAINER_HOST`` naming it.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from clearml_core_runner_docker.engine import api_errors, is_not_found, labelled_containers

from tests.agent.conftest import Daemons, Tasks, daemons, plane, tasks  # noqa: F401  (fixtures)
from tests.conftest import clearml_agent_python  # noqa: F401  (fixture: clearml-agent to compare with)

from .engine import engine_url, ensure_image, start_podman

LABEL = "clearml-core.task"


@pytest.fixture(scope="session")
def docker_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from engine_url(tmp_path_factory.mktemp("dockerd"))


@pytest.fixture(scope="session")
def docker_client(docker_url: str) -> Iterator[Any]:
    import docker

    client = docker.DockerClient(base_url=docker_url, timeout=120)
    yield client
    client.close()


@pytest.fixture(scope="session")
def test_image(docker_client: Any) -> str:
    return ensure_image(docker_client)


@pytest.fixture(scope="session")
def podman_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from start_podman(tmp_path_factory.mktemp("podman"))


@pytest.fixture(scope="session")
def podman_client(podman_url: str) -> Iterator[Any]:
    import docker

    client = docker.DockerClient(base_url=podman_url, timeout=120, version="auto")
    yield client
    client.close()


@pytest.fixture(scope="session")
def podman_image(podman_client: Any) -> str:
    return ensure_image(podman_client)


@pytest.fixture(scope="session")
def agent_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheels and agent environments of the whole session (built by the first test)."""
    return tmp_path_factory.mktemp("docker-agent-cache")


def _uv_folder() -> str | None:
    found = os.environ.get("UV") or shutil.which("uv")
    return str(Path(found).parent) if found else None


BASE_SETTINGS: dict[str, Any] = {
    "agent.docker_install_opencv_libs": False,  # the image has no network to fetch them
}


@dataclass
class DockerSetup:
    """What a docker test works with; :meth:`configure` rewrites its clearml.conf."""

    image: str
    conf: Path
    cache: Path
    url: str
    client: Any

    def configure(self, settings: dict[str, Any] | None = None) -> None:
        """clearml.conf with the docker test settings and ``settings`` (dotted keys, JSON values)."""
        values = {**BASE_SETTINGS, "agent.docker_agent_cache": str(self.cache), **(settings or {})}
        self.conf.write_text(
            "".join(f"{key}: {json.dumps(value)}\n" for key, value in values.items()), encoding="utf-8"
        )


@pytest.fixture
def docker(
    docker_url: str,
    docker_client: Any,
    test_image: str,
    agent_cache: Path,
    clearml_conf: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> DockerSetup:
    """The engine for this process and its children (``DOCKER_HOST``), uv on ``PATH`` (it builds
    the wheels of a development checkout), and a clearml.conf for docker mode."""
    monkeypatch.setenv("DOCKER_HOST", docker_url)
    return _setup(DockerSetup(test_image, clearml_conf, agent_cache, docker_url, docker_client), monkeypatch)


@pytest.fixture
def podman(
    podman_url: str,
    podman_client: Any,
    podman_image: str,
    agent_cache: Path,
    clearml_conf: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> DockerSetup:
    """As ``docker``, for ``--podman``: ``CONTAINER_HOST`` names this session's podman, and
    ``DOCKER_HOST`` a socket nothing listens on, so whatever reaches for docker instead fails."""
    monkeypatch.setenv("CONTAINER_HOST", podman_url)
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-docker.sock")
    return _setup(
        DockerSetup(podman_image, clearml_conf, agent_cache, podman_url, podman_client), monkeypatch
    )


def _setup(setup: DockerSetup, monkeypatch: pytest.MonkeyPatch) -> DockerSetup:
    uv = _uv_folder()
    if uv and uv not in os.environ.get("PATH", "").split(os.pathsep):
        monkeypatch.setenv("PATH", f"{uv}{os.pathsep}{os.environ.get('PATH', '')}")
    setup.configure()
    return setup


@pytest.fixture(autouse=True)
def no_leftovers(request: pytest.FixtureRequest) -> Iterator[None]:
    """No container of clearml-core is left on the engines after a test (running or stopped)."""
    yield
    left = []
    for engine in ("docker_client", "podman_client"):
        if engine not in request.fixturenames:
            continue
        client = request.getfixturevalue(engine)
        for container in labelled_containers(client, LABEL):
            left.append(" ".join(container.attrs.get("Names") or [container.short_id]))
            try:
                container.remove(force=True)
            except api_errors() as error:
                if not is_not_found(error):  # (one may end and go while we look)
                    raise
    assert not left, f"containers left behind: {left}"
