"""Published ports (``-p HOST:CONTAINER``) that are taken on this machine, moved to free ones.

As clearml-agent does: a host port in use (or outside ``agent.docker_args_allowed_port_range``)
is replaced by a free one (a free run of consecutive ports for a range ``8000-8002:80-82``)
inside the allowed range, by default 10000-60000. The task learns where its ports went through
``CLEARML_AGENT_HOST_IP`` and the runtime property ``_external_host_tcp_port_mapping``
(``"10001:80,10002:443"``). With host networking nothing is published, so nothing is moved.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

DEFAULT_RANGE = (10000, 60000)
RUNTIME_KEY = "_external_host_tcp_port_mapping"
HOST_IP_VARIABLE = "CLEARML_AGENT_HOST_IP"
FORCE_HOST_IP_VARIABLE = "CLEARML_AGENT_FORCE_HOST_MACHINE_IP"


def used_ports() -> set[int]:
    import psutil

    try:
        return {conn.laddr.port for conn in psutil.net_connections() if conn.laddr}
    except (psutil.Error, OSError):
        return set()


@dataclass
class PortPlan:
    allowed: tuple[int, int] | None = None
    used: set[int] = field(default_factory=set)

    def available(self, port: int) -> bool:
        if self.allowed and not self.allowed[0] <= port <= self.allowed[1]:
            return False
        return port not in self.used

    def free_run(self, count: int) -> list[int]:
        low, high = self.allowed or DEFAULT_RANGE
        run: list[int] = []
        for port in range(low, high + 1):
            if port in self.used:
                run = []
                continue
            run.append(port)
            if len(run) == count:
                self.used.update(run)
                return run
        return []


def allowed_range(value: Any) -> tuple[int, int] | None:
    """``agent.docker_args_allowed_port_range`` (``[9000, 10000]``) as (first, last)."""
    if not value:
        return None
    try:
        ports = [int(port) for port in value]
    except (TypeError, ValueError):
        from clearml_core.errors import ConfigError

        raise ConfigError(
            f"agent.docker_args_allowed_port_range must be [FIRST, LAST], not {value!r}"
        ) from None
    return (min(ports), max(ports))


def remap(
    ports: dict[str, Any], allowed: tuple[int, int] | None, used: set[int] | None = None
) -> dict[str, Any]:
    """``ports`` (the SDK's ``{"80/tcp": 8080}``) with every taken TCP host port replaced."""
    plan = PortPlan(allowed, used_ports() if used is None else set(used))
    result = dict(ports)
    for key, binding in ports.items():
        port = binding[1] if isinstance(binding, tuple) else binding
        if not isinstance(port, int) or not key.endswith("/tcp"):
            continue
        if plan.available(port):
            plan.used.add(port)
            continue
        moved = plan.free_run(1)
        if not moved:
            continue  # nothing free: leave it, the engine says why it cannot bind
        result[key] = (binding[0], moved[0]) if isinstance(binding, tuple) else moved[0]
    return result


def mapping(ports: dict[str, Any]) -> str:
    """``"10001:80,10002:443"``: host port to container port, as clearml-agent records it."""
    pairs = []
    for key, binding in ports.items():
        port = binding[1] if isinstance(binding, tuple) else binding
        if isinstance(port, int):
            pairs.append(f"{port}:{key.split('/')[0]}")
    return ",".join(pairs)


def host_ip() -> str | None:
    """This machine's address on its default route (or ``CLEARML_AGENT_FORCE_HOST_MACHINE_IP``)."""
    import os
    import socket

    forced = os.environ.get(FORCE_HOST_IP_VARIABLE, "").strip()
    if forced:
        return forced
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("10.255.255.255", 1))  # no packet is sent: it only picks the route
            return str(probe.getsockname()[0])
    except OSError:
        return None


def published(ports: dict[str, Any]) -> Sequence[str]:
    return [key for key, binding in ports.items() if binding is not None]


__all__ = ["allowed_range", "host_ip", "mapping", "remap"]
