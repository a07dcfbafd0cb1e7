"""``server.*`` and ``debug.*``: what a client asks before anything else."""

from __future__ import annotations

from typing import Any

from clearml_core import __version__
from clearml_core.server.endpoints import Call, endpoint, endpoint_names
from clearml_core.server.settings import API_VERSION, SERVER_VERSION


@endpoint("debug.ping", authorize=False)
def ping(call: Call) -> dict[str, Any]:
    return {"msg": "ClearML server (clearml-core)"}


@endpoint("server.info")
def info(call: Call) -> dict[str, Any]:
    return {
        "version": SERVER_VERSION,
        "build": f"clearml-core {__version__}",
        "commit": "",
        "api_version": API_VERSION,
        "uid": call.ctx.settings.company_id,
    }


@endpoint("server.endpoints")
def endpoints(call: Call) -> dict[str, Any]:
    """The names this server serves (clearml-core's: ClearML server has no such call)."""
    return {"endpoints": endpoint_names()}
