"""A worker's heartbeats: the sign of life the watchdog waits for, and the machine stats.

The daemon heartbeats from its own loop; ``agent execute`` has no loop while its task runs, so
its worker heartbeats from a :class:`Heartbeat` thread. Both every ``agent.report_period_sec``.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from clearml_core.config import Config
    from clearml_core.controlplane import ControlPlane

log = logging.getLogger("clearml_core.agent")

DEFAULT_REPORT_PERIOD = 10.0


def report_period(config: Config) -> float:
    """Seconds between two heartbeats (``agent.report_period_sec``)."""
    value = config.get_float("agent.report_period_sec", DEFAULT_REPORT_PERIOD)
    return DEFAULT_REPORT_PERIOD if value is None else value


class Heartbeat(threading.Thread):
    """Heartbeats of a worker from a thread (``agent execute``: no loop of its own), with machine
    stats unless ``stats`` is false (``--disable-monitoring``: only the sign of life)."""

    def __init__(
        self,
        plane: ControlPlane,
        worker_id: str,
        period: float,
        *,
        stats: bool = True,
        gpus: list[str] | None = None,
    ) -> None:
        super().__init__(name="clearml-heartbeat", daemon=True)
        self._plane = plane
        self._worker_id = worker_id
        self._period = period
        self._with_stats = stats
        self._gpus = gpus
        self._done = threading.Event()

    def run(self) -> None:
        from clearml_core.agent.stats import MachineStats

        stats = MachineStats(gpus=self._gpus) if self._with_stats else None
        try:
            while not self._done.wait(self._period):
                try:
                    snapshot = stats.snapshot() if stats is not None else None
                    self._plane.heartbeat(self._worker_id, machine_stats=snapshot)
                except Exception as error:
                    log.warning("heartbeat failed (will retry): %s", error)
        finally:
            if stats is not None:
                stats.close()

    def finish(self) -> None:
        self._done.set()
        if self.is_alive():
            self.join(5)


__all__ = ["DEFAULT_REPORT_PERIOD", "Heartbeat", "report_period"]
