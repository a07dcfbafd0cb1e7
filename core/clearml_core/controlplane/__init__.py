"""Where tasks, queues and workers live: the protocol, the records, and opening the configured store.

``agent.control_plane`` names the store as a URL; its scheme picks the implementation through the
plugin registry (``sqlite`` is built in; a plugin can add others, such as a Redis store)::

    from clearml_core.controlplane import open_control_plane

    plane = open_control_plane()                     # agent.control_plane, by default the
    task = plane.get_task("…")                       # embedded ~/.clearml-core/state.db

Importing this package loads the protocol (:mod:`~clearml_core.controlplane.protocol`) and the
records (:mod:`~clearml_core.controlplane.records`) only; the SQLite module loads when a sqlite URL
is opened.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

from clearml_core.controlplane.protocol import (
    DEFAULT_QUEUE,
    AlreadyExistsError,
    ControlPlane,
    ControlPlaneError,
    InvalidTransitionError,
    QueueNotFoundError,
    TaskNotFoundError,
    WorkerNotFoundError,
)
from clearml_core.controlplane.records import (
    EDITABLE_TASK_FIELDS,
    FINAL_STATUSES,
    Container,
    LogEvent,
    Parameters,
    Queue,
    Requirements,
    RuntimeProperty,
    Script,
    Task,
    TaskStatus,
    Worker,
)
from clearml_core.errors import UserError

if TYPE_CHECKING:
    from clearml_core.config import Config

DEFAULT_CONTROL_PLANE = "sqlite:///~/.clearml-core/state.db"
CONTROL_PLANE_KEY = "agent.control_plane"
REDIS_HOST_VARIABLE = "CLEARML_REDIS_SERVICE_HOST"
REDIS_PORT_VARIABLE = "CLEARML_REDIS_SERVICE_PORT"

API_SERVER_KEY = "api.api_server"
CLEARML_SCHEME_PREFIX = "clearml+"

_INSTALL_REDIS = "the Redis control plane: pip install 'clearml-core[redis]'"
_INSTALL_CLEARML = (
    "the ClearML control plane, which api.api_server (or CLEARML_API_HOST) selects: "
    "pip install 'clearml-core[clearml]'"
)
_HINTS = {
    "redis": _INSTALL_REDIS,
    "rediss": _INSTALL_REDIS,
    "clearml+http": _INSTALL_CLEARML,
    "clearml+https": _INSTALL_CLEARML,
}
"""What to do about a control-plane scheme no installed plugin serves."""


def control_plane_url(
    config: Config | None = None, environ: Mapping[str, str] | None = None, *, api_server: bool = True
) -> str:
    """The configured control-plane URL (``agent.control_plane``).

    When it is not set (in clearml.conf or the environment), a ClearML API server that
    ``api.api_server`` (or ``CLEARML_API_HOST``) names is the control plane,
    ``clearml+http(s)://HOST:PORT``, so a clearml.conf written for ClearML's clients is obeyed
    (``api_server=False``: not, for a process that is that server). Else ClearML server's
    ``CLEARML_REDIS_SERVICE_HOST`` (and ``CLEARML_REDIS_SERVICE_PORT``, default 6379) name a Redis
    control plane: ``redis://HOST:PORT/0``.
    """
    if config is None:
        from clearml_core.settings import get_config

        config = get_config()
    environ = os.environ if environ is None else environ
    if config.origin(CONTROL_PLANE_KEY) == "default":
        server = (config.get_str(API_SERVER_KEY, "") or "").strip().rstrip("/") if api_server else ""
        if server:
            return CLEARML_SCHEME_PREFIX + server
        redis_host = environ.get(REDIS_HOST_VARIABLE, "").strip()
        if redis_host:
            port = environ.get(REDIS_PORT_VARIABLE, "").strip() or "6379"
            return f"redis://{redis_host}:{port}/0"
    return config.get_str(CONTROL_PLANE_KEY, DEFAULT_CONTROL_PLANE) or DEFAULT_CONTROL_PLANE


def control_plane_origin(config: Config, url: str) -> str:
    """Which setting chose ``url`` (what ``doctor`` and a starting daemon print beside it)."""
    if config.origin(CONTROL_PLANE_KEY) != "default":
        return f"{CONTROL_PLANE_KEY}, {config.origin(CONTROL_PLANE_KEY)}"
    if url.startswith(CLEARML_SCHEME_PREFIX):
        return f"{API_SERVER_KEY}, {config.origin(API_SERVER_KEY)}"
    if url.startswith("redis://"):
        return REDIS_HOST_VARIABLE
    return "the default"


def open_control_plane(url: str | None = None, config: Config | None = None) -> ControlPlane:
    """Open the control plane at ``url`` (default: ``agent.control_plane``).

    The URL's scheme selects the implementation among the installed plugins; a scheme nobody
    serves is a :class:`UserError` with the install hint.
    """
    from clearml_core.plugins import get_registry

    if config is None:
        from clearml_core.settings import get_config

        config = get_config()
    if url is None:
        url = control_plane_url(config)
    scheme, sep, _rest = url.partition("://")
    if not sep or not scheme:
        raise UserError(
            f"control-plane URL {url!r} has no scheme; write sqlite:///PATH, redis://HOST:PORT/DB or "
            "clearml+http://HOST:8008 "
            f"(setting {CONTROL_PLANE_KEY}, {config.origin(CONTROL_PLANE_KEY)})"
        )
    registry = get_registry()
    spec = registry.control_plane_for(scheme)
    if spec is None:
        known = ", ".join(sorted(s for p in registry.control_planes() for s in p.schemes)) or "none"
        hint = _HINTS.get(scheme.lower())
        what = f"{scheme}:// needs a control-plane plugin"
        raise UserError(f"{what}: {hint}" if hint else f"{what}; installed control planes serve: {known}")
    factory = spec.load()
    plane = factory(url, config)
    if not isinstance(plane, ControlPlane):
        raise TypeError(f"control plane {spec.name!r} factory returned {plane!r}, not a ControlPlane")
    return plane


__all__ = [
    "API_SERVER_KEY",
    "CLEARML_SCHEME_PREFIX",
    "CONTROL_PLANE_KEY",
    "DEFAULT_CONTROL_PLANE",
    "DEFAULT_QUEUE",
    "EDITABLE_TASK_FIELDS",
    "FINAL_STATUSES",
    "AlreadyExistsError",
    "Container",
    "ControlPlane",
    "ControlPlaneError",
    "InvalidTransitionError",
    "LogEvent",
    "Parameters",
    "Queue",
    "QueueNotFoundError",
    "Requirements",
    "RuntimeProperty",
    "Script",
    "Task",
    "TaskNotFoundError",
    "TaskStatus",
    "Worker",
    "WorkerNotFoundError",
    "control_plane_origin",
    "control_plane_url",
    "open_control_plane",
]
