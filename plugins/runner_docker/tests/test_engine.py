"""What the engine says about containers that come and go, on real Docker and podman engines: a
listing reads labels from its own reply, and a container removed a moment ago is "not found"
whichever way the engine words it."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests
from clearml_core_runner_docker.engine import api_errors, is_not_found, labelled_containers, labels_of
from docker.errors import APIError

from .conftest import LABEL

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


@pytest.fixture(
    params=[("docker_client", "test_image"), ("podman_client", "podman_image")], ids=["docker", "podman"]
)
def engine(request: pytest.FixtureRequest) -> tuple[Any, str]:
    """(client, image) of one real engine."""
    client, image = request.param
    return request.getfixturevalue(client), request.getfixturevalue(image)


def test_a_listing_reads_labels_without_inspecting_and_a_removed_container_is_not_found(
    engine: tuple[Any, str],
) -> None:
    client, image = engine
    container = client.containers.create(image, ["sleep", "60"], labels={LABEL: "t-listing", "other": "x"})
    try:
        listed = labelled_containers(client, f"{LABEL}=t-listing")
        assert [c.id for c in listed] == [container.id]
        assert labels_of(listed[0])[LABEL] == "t-listing"
        assert labelled_containers(client, f"{LABEL}=t-listing", stopped_too=False) == []  # never started
    finally:
        container.remove(force=True)
    # the listing's objects outlive the container; what they are asked now is answered "not found"
    with pytest.raises(api_errors()) as raised:
        client.api.wait(container.id, timeout=10)
    assert is_not_found(raised.value), raised.value
    assert labelled_containers(client, f"{LABEL}=t-listing") == []


def _error(status: int, message: str) -> APIError:
    response = requests.Response()
    response.status_code = status
    response._content = json.dumps({"message": message}).encode()
    return APIError(f"{status} Server Error", response=response, explanation=message)


def test_podmans_500_for_a_container_removed_since_a_listing_is_not_found() -> None:
    # what podman answered in CI when a container went between a listing and its inspection
    assert is_not_found(_error(500, "container 88b3 does not exist in database: no such container"))
    assert not is_not_found(_error(500, "cannot start: device driver not found"))
    assert not is_not_found(RuntimeError("no such container"))  # only the engine's own answers
