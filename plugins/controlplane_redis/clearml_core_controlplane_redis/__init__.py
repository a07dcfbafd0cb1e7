"""The Redis control plane for clearml-core: queues, tasks and workers shared by many machines.

This module is what the ``controlplane_redis`` entry point names, so it stays cheap: it only
describes what the plugin offers. redis-py is imported by :mod:`clearml_core_controlplane_redis.plane`
when a ``redis://`` or ``rediss://`` control plane is first opened.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from clearml_core.hookspecs import hookimpl
from clearml_core.specs import ControlPlaneSpec

__version__ = "0.1.0"


@hookimpl
def clearml_control_planes() -> Iterable[ControlPlaneSpec]:
    return [
        ControlPlaneSpec(
            name="redis",
            schemes=("redis", "rediss"),
            factory="clearml_core_controlplane_redis.plane:RedisControlPlane.from_url",
            description="Redis (rediss: with TLS): one set of queues for agents on many machines",
        )
    ]


@hookimpl
def clearml_config_defaults() -> Iterable[Path]:
    return [Path(__file__).with_name("defaults.conf")]
