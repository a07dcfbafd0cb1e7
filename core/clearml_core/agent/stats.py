"""Machine stats a worker reports with its heartbeats: CPU, memory, disk, and GPUs when NVML is there.

GPUs are read through nvidia-ml-py (``pynvml``) only when it imports and finds a driver; a machine
without either reports no GPU section. Everything here is cheap: ``psutil.cpu_percent`` measures
since the previous call, so reporting never sleeps.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any


class MachineStats:
    """Collects one snapshot per call; keeps the NVML handle between calls."""

    def __init__(self, disk_path: Path | None = None, gpus: Sequence[str] | None = None) -> None:
        import psutil

        self._psutil = psutil
        self._disk_path = disk_path or Path.home()
        self._gpus = None if gpus is None else list(gpus)
        psutil.cpu_percent(None)  # prime the counter: the first report measures from here
        self._nvml: Any = None
        self._nvml_failed = False

    def _nvml_module(self) -> Any:
        if self._nvml is not None or self._nvml_failed:
            return self._nvml
        try:
            import pynvml  # type: ignore[import-not-found, unused-ignore]

            pynvml.nvmlInit()
            self._nvml = pynvml
        except Exception:
            self._nvml_failed = True
        return self._nvml

    def gpus(self) -> list[dict[str, Any]]:
        nvml = self._nvml_module()
        if nvml is None:
            return []
        found = []
        try:
            count = nvml.nvmlDeviceGetCount()
            for index in range(count):
                if self._gpus is not None and str(index) not in self._gpus:
                    continue
                handle = nvml.nvmlDeviceGetHandleByIndex(index)
                memory = nvml.nvmlDeviceGetMemoryInfo(handle)
                utilization = nvml.nvmlDeviceGetUtilizationRates(handle)
                name = nvml.nvmlDeviceGetName(handle)
                try:
                    temperature = nvml.nvmlDeviceGetTemperature(handle, nvml.NVML_TEMPERATURE_GPU)
                except Exception:
                    temperature = None
                found.append(
                    {
                        "index": index,
                        "name": name.decode() if isinstance(name, bytes) else str(name),
                        "utilization_percent": float(utilization.gpu),
                        "memory_used_mb": round(memory.used / 2**20, 1),
                        "memory_total_mb": round(memory.total / 2**20, 1),
                        "temperature_c": temperature,
                    }
                )
        except Exception:
            return found
        return found

    def snapshot(self) -> dict[str, Any]:
        psutil = self._psutil
        memory = psutil.virtual_memory()
        try:
            disk = shutil.disk_usage(self._disk_path)
            disk_stats = {
                "disk_free_gb": round(disk.free / 2**30, 2),
                "disk_used_percent": round(100 * disk.used / disk.total, 1) if disk.total else None,
            }
        except OSError:
            disk_stats = {}
        try:
            load = os.getloadavg()[0]
        except (OSError, AttributeError):
            load = None
        stats: dict[str, Any] = {
            "cpu_percent": psutil.cpu_percent(None),
            "cpu_count": psutil.cpu_count(),
            "load_1m": load,
            "memory_used_percent": memory.percent,
            "memory_used_gb": round((memory.total - memory.available) / 2**30, 2),
            "memory_total_gb": round(memory.total / 2**30, 2),
            **disk_stats,
        }
        gpus = self.gpus()
        if gpus:
            stats["gpus"] = gpus
        return stats

    def close(self) -> None:
        if self._nvml is not None:
            with contextlib.suppress(Exception):
                self._nvml.nvmlShutdown()
            self._nvml = None
