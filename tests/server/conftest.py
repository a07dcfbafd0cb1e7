from __future__ import annotations

from collections.abc import Iterator

import pytest

from clearml_core.testing.clearml_server import ApiClient, ClearMLServer


@pytest.fixture
def api(clearml_server: ClearMLServer) -> Iterator[ApiClient]:
    """A client of the test server's API, signed in with its access key."""
    client = ApiClient(clearml_server.api_url, clearml_server.access_key, clearml_server.secret_key)
    client.login()
    yield client
    client.close()
