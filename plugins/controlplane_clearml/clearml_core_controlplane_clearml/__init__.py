"""The ClearML control plane for clearml-core: the queues, tasks and workers of a ClearML API server.

This module is what the ``controlplane_clearml`` entry point names, so it stays cheap: it only
describes what the plugin offers. The client (:mod:`clearml_core_controlplane_clearml.plane`) loads
when a ``clearml+http://`` or ``clearml+https://`` control plane is first opened; that URL is what
``api.api_server`` selects (see :func:`clearml_core.controlplane.control_plane_url`).
"""

from __future__ import annotations

from collections.abc import Iterable

from clearml_core.hookspecs import hookimpl
from clearml_core.specs import ControlPlaneSpec

__version__ = "0.1.0"


@hookimpl
def clearml_control_planes() -> Iterable[ControlPlaneSpec]:
    return [
        ControlPlaneSpec(
            name="clearml",
            schemes=("clearml+http", "clearml+https"),
            factory="clearml_core_controlplane_clearml.plane:ClearMLControlPlane.from_url",
            description="a ClearML API server (clearml-core server, or ClearML's own) over its REST API",
        )
    ]
