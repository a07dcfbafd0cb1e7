"""The container engine, through the Docker SDK for Python: which one, and what its errors mean.

Docker is found as its own tools find it: ``DOCKER_HOST`` (and ``DOCKER_TLS_VERIFY`` /
``DOCKER_CERT_PATH``), else the default socket. ``--podman`` talks to podman's Docker-compatible
API instead: ``CONTAINER_HOST`` when set, else the socket podman's service listens on
(``$XDG_RUNTIME_DIR/podman/podman.sock`` for a user, ``/run/podman/podman.sock`` for root).
An engine that does not answer is an :class:`EngineUnavailable` naming where it was looked for
and what to do.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from clearml_core.runners.base import ExecutionError

if TYPE_CHECKING:
    import docker

PODMAN_HOST_VARIABLE = "CONTAINER_HOST"
API_TIMEOUT = 120
"""Seconds one call to the engine may take (creating a container on a busy disk can be slow)."""


class EngineUnavailable(ExecutionError):
    """No engine answers; the message says where it was looked for and what to do."""


def podman_socket(environ: dict[str, str] | None = None) -> str:
    """The URL of podman's Docker-compatible API on this machine."""
    environ = dict(os.environ if environ is None else environ)
    named = environ.get(PODMAN_HOST_VARIABLE, "").strip()
    if named:
        return named
    runtime = environ.get("XDG_RUNTIME_DIR", "").strip()
    candidates = [Path(runtime) / "podman" / "podman.sock"] if runtime else []
    candidates.append(Path("/run/podman/podman.sock"))
    for candidate in candidates:
        if candidate.exists():
            return f"unix://{candidate}"
    return f"unix://{candidates[0]}"


def describe_url(podman: bool = False) -> str:
    if podman:
        return podman_socket()
    return os.environ.get("DOCKER_HOST", "").strip() or "unix:///var/run/docker.sock"


def connect(*, podman: bool = False) -> docker.DockerClient:
    """A client of the engine that answers a ping; :class:`EngineUnavailable` when none does."""
    import docker
    from docker.errors import DockerException

    where = describe_url(podman)
    try:
        # the client asks the engine its API version first: an engine that is down fails here
        if podman:
            client = docker.DockerClient(base_url=where, timeout=API_TIMEOUT, version="auto")
        else:
            client = docker.from_env(timeout=API_TIMEOUT, version="auto")
    except (DockerException, OSError) as error:
        raise EngineUnavailable(unavailable_message(where, error, podman)) from None
    return client


def unavailable_message(where: str, error: BaseException, podman: bool = False) -> str:
    if podman:
        todo = "start podman's API service (systemctl --user start podman.socket) or set CONTAINER_HOST"
    else:
        todo = "start the docker engine (systemctl start docker) or point DOCKER_HOST at one"
    return f"the container engine at {where} does not answer ({short_error(error)}); {todo}"


def short_error(error: BaseException) -> str:
    """The engine's own explanation, without the SDK's request line around it."""
    explanation = getattr(error, "explanation", None)
    if explanation:
        text = explanation.decode() if isinstance(explanation, bytes) else str(explanation)
    else:
        text = str(error)
    text = " ".join(text.split())
    for noise in ("Error while fetching server API version: ",):
        text = text.replace(noise, "")
    return text


def is_not_found(error: BaseException) -> bool:
    """The engine says the container (or image) a call named does not exist, or no longer does.

    Docker answers 404; podman's Docker-compatible API answers some calls about a container removed
    a moment ago with 500 "no such container".
    """
    from docker.errors import APIError, NotFound

    if isinstance(error, NotFound):
        return True
    return isinstance(error, APIError) and "no such container" in short_error(error).lower()


def labelled_containers(client: Any, label: str, *, stopped_too: bool = True) -> list[Any]:
    """The containers carrying ``label`` (``key`` or ``key=value``), as one listing reports them.

    Sparse, because docker-py would otherwise inspect each listed container in a call of its own,
    and a container removed in between (an abort, a task's end) fails that call: 404 from Docker,
    500 from podman, which ``ignore_removed`` does not cover. Read labels with :func:`labels_of`.
    """
    return list(client.containers.list(all=stopped_too, filters={"label": label}, sparse=True))


def labels_of(container: Any) -> dict[str, str]:
    """The labels of a container from :func:`labelled_containers` (the listing's own field)."""
    return dict(container.attrs.get("Labels") or {})


def api_errors() -> tuple[type[BaseException], ...]:
    """What a call to the engine raises when the engine refuses or cannot be reached."""
    from docker.errors import DockerException
    from requests.exceptions import RequestException

    return (DockerException, RequestException, OSError)


def image_id(client: Any, reference: str) -> str | None:
    """The id of the local image ``reference``, or None when this machine does not have it."""
    from docker.errors import ImageNotFound

    try:
        return str(client.images.get(reference).id)
    except ImageNotFound:
        return None


__all__ = [
    "EngineUnavailable",
    "api_errors",
    "connect",
    "describe_url",
    "image_id",
    "is_not_found",
    "labelled_containers",
    "labels_of",
    "podman_socket",
    "short_error",
]
