"""Fixtures of the ClearML control plane's tests: one real ``clearml-core server`` on loopback for
the session (its API role, a SQLite control plane of its own), emptied before each test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from clearml_core.controlplane import DEFAULT_QUEUE, ControlPlane, open_control_plane
from clearml_core.testing.clearml_server import ClearMLServer, run_clearml_server


@pytest.fixture(scope="session")
def api_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClearMLServer]:
    with run_clearml_server(tmp_path_factory.mktemp("clearml-server"), roles=("api",)) as server:
        yield server


@pytest.fixture
def empty_server(api_server: ClearMLServer) -> ClearMLServer:
    """The session's server with no tasks, no workers and only the ``default`` queue, untagged
    (a tag such as ``force_workers:off`` left by a test would keep daemons away from it), as the
    conformance suite wants it (emptied through its own control plane)."""
    with open_control_plane(api_server.control_plane) as store:
        for task in store.list_tasks():
            store.delete_task(task.id, force=True)
        for queue in store.list_queues():
            if queue.name != DEFAULT_QUEUE:
                store.delete_queue(queue.name, force=True)
            elif queue.tags:
                store.tag_queue(queue.name, remove=queue.tags)
        for worker in store.list_workers():
            store.unregister_worker(worker.id)
    return api_server


@pytest.fixture
def server_env(
    empty_server: ClearMLServer, clearml_home: Path, monkeypatch: pytest.MonkeyPatch
) -> ClearMLServer:
    """The server named by ClearML's variables, as a deployment hands them to its agents."""
    from clearml_core.settings import reset_config

    for name in ("CLEARML_API_HOST", "CLEARML_API_ACCESS_KEY", "CLEARML_API_SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CLEARML_API_HOST", empty_server.api_url)
    monkeypatch.setenv("CLEARML_API_ACCESS_KEY", empty_server.access_key)
    monkeypatch.setenv("CLEARML_API_SECRET_KEY", empty_server.secret_key)
    reset_config()
    return empty_server


@pytest.fixture
def plane(server_env: ClearMLServer) -> Iterator[ControlPlane]:
    """The ClearML control plane over the emptied server, opened as the CLI opens it."""
    opened = open_control_plane()
    yield opened
    opened.close()
