from __future__ import annotations

from collections.abc import Iterator

import pytest

from clearml_core.testing.clearml_server import ApiClient, ClearMLServer
from tests.server.support import LocalServer, local_server


@pytest.fixture
def api(clearml_server: ClearMLServer) -> Iterator[ApiClient]:
    """A client of the test server's API, signed in with its access key."""
    client = ApiClient(clearml_server.api_url, clearml_server.access_key, clearml_server.secret_key)
    client.login()
    yield client
    client.close()


@pytest.fixture
def server(tmp_path) -> Iterator[LocalServer]:
    """An in-process server (see support.py)."""
    with local_server(tmp_path / "server") as running:
        yield running


@pytest.fixture
def client(server: LocalServer) -> Iterator[ApiClient]:
    """A client of the in-process server, signed in with its access key."""
    api_client = server.client()
    yield api_client
    api_client.close()
