"""GPUs: pinning tasks to devices (``--gpus``, ``--cpu-only``) and dynamic allocation per queue.

``--gpus 0,1`` / ``0-3`` pins every task of the daemon to those devices. ``--cpu-only`` hides all
of them. ``--dynamic-gpus --gpus 0-7 --queue quad=4 dual=2 opportunistic=1-4`` lets one daemon run
several tasks at once, as clearml-agent's "Dynamic GPU Allocation" describes: a queue asks for a
number of GPUs, or a range ``min-max``; the daemon pulls from a queue (in priority order) only
while at least that many (``min``) devices are free, and a range takes as many free devices as it
can, up to ``max``. Devices come back when the task ends.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from clearml_core.errors import UserError

CUDA_VISIBLE_DEVICES = "CUDA_VISIBLE_DEVICES"
NVIDIA_VISIBLE_DEVICES = "NVIDIA_VISIBLE_DEVICES"


class GpuSpecError(UserError):
    """A --gpus value or a queue=N request cannot be read."""


def parse_gpus(value: str | Sequence[str] | None) -> list[str] | None:
    """Device ids from ``"0,1"``, ``"0-3"``, ``"0,2-3"`` or MIG-style ``"0:0,0:1"``.

    ``None``/``""``/``"all"`` means no pinning (None); ``"none"`` means no GPU at all (``[]``).
    """
    if value is None:
        return None
    text = ",".join(value) if not isinstance(value, str) else value
    text = text.replace(" ", "")
    if text.lower() in ("", "all"):
        return None
    if text.lower() in ("none", "cpu"):
        return []
    devices: list[str] = []
    for part in text.split(","):
        if not part:
            continue
        match = re.fullmatch(r"(\d+)-(\d+)", part)
        if match:
            first, last = int(match.group(1)), int(match.group(2))
            if last < first:
                raise GpuSpecError(f"--gpus {text!r}: the range {part} runs backwards")
            devices.extend(str(index) for index in range(first, last + 1))
        elif re.fullmatch(r"\d+(:\d+)?|[A-Za-z0-9-]+", part):
            devices.append(part)
        else:
            raise GpuSpecError(f"--gpus {text!r}: {part!r} is not a device index, range (0-3) or id")
    if len(set(devices)) != len(devices):
        raise GpuSpecError(f"--gpus {text!r} names a device twice")
    return devices


@dataclass(frozen=True)
class QueueRequest:
    """A queue and how many GPUs each of its tasks gets: exactly ``minimum`` when equal to
    ``maximum``, else as many as free up to ``maximum``."""

    queue: str
    minimum: int
    maximum: int

    def __str__(self) -> str:
        count = str(self.minimum) if self.minimum == self.maximum else f"{self.minimum}-{self.maximum}"
        return f"{self.queue}={count}"


def parse_queue_requests(values: Iterable[str]) -> list[QueueRequest]:
    """``["dual=2", "opportunistic=1-4"]`` → requests, in the order given (the queue priority)."""
    requests: list[QueueRequest] = []
    for value in values:
        name, sep, count = value.rpartition("=")
        if not sep or not name:
            raise GpuSpecError(
                f"--dynamic-gpus needs a GPU count on every queue: write {value}=N or {value}=MIN-MAX"
            )
        match = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", count)
        if not match:
            if re.fullmatch(r"\s*0?\.\d+\s*", count):
                raise GpuSpecError(
                    f"{value}: fractions of a GPU need ClearML's fractional GPU containers, which "
                    "clearml-core does not provide; ask for whole GPUs"
                )
            raise GpuSpecError(f"{value}: the GPU count must be N or MIN-MAX (for example dual=2, any=1-4)")
        minimum = int(match.group(1))
        maximum = int(match.group(2)) if match.group(2) else minimum
        if minimum < 1 or maximum < minimum:
            raise GpuSpecError(f"{value}: ask for at least one GPU, with MIN ≤ MAX")
        requests.append(QueueRequest(name, minimum, maximum))
    return requests


class GpuAllocator:
    """Which of the daemon's devices are free; thread-safe."""

    def __init__(self, devices: Sequence[str]) -> None:
        self.devices = list(devices)
        self._owners: dict[str, str] = {}
        self._lock = threading.Lock()

    def free(self) -> list[str]:
        with self._lock:
            return [device for device in self.devices if device not in self._owners]

    def can_serve(self, request: QueueRequest) -> bool:
        return len(self.free()) >= request.minimum

    def allocate(self, owner: str, request: QueueRequest) -> list[str] | None:
        """Take devices for ``owner`` (a task id): ``minimum`` up to ``maximum`` of the free
        ones, lowest first; None when fewer than ``minimum`` are free."""
        with self._lock:
            free = [device for device in self.devices if device not in self._owners]
            if len(free) < request.minimum:
                return None
            taken = free[: request.maximum]
            for device in taken:
                self._owners[device] = owner
            return taken

    def release(self, owner: str) -> list[str]:
        with self._lock:
            released = [device for device, who in self._owners.items() if who == owner]
            for device in released:
                del self._owners[device]
            return released

    def usage(self) -> dict[str, str]:
        """device → the task using it."""
        with self._lock:
            return dict(self._owners)


def gpu_environment(devices: Sequence[str] | None) -> dict[str, str]:
    """The variables that pin a process to ``devices`` (None: leave the environment alone;
    empty: no GPU at all)."""
    if devices is None:
        return {}
    if not devices:
        return {CUDA_VISIBLE_DEVICES: "", NVIDIA_VISIBLE_DEVICES: "none"}
    joined = ",".join(devices)
    return {CUDA_VISIBLE_DEVICES: joined, NVIDIA_VISIBLE_DEVICES: joined}


def detect_gpus(environ: Mapping[str, str] | None = None) -> list[str]:
    """The GPUs this machine shows: through NVML (nvidia-ml-py) when installed, narrowed to
    ``CUDA_VISIBLE_DEVICES`` when that is set; none otherwise."""
    environ = os.environ if environ is None else environ
    visible = environ.get(CUDA_VISIBLE_DEVICES)
    count = 0
    try:
        import pynvml  # type: ignore[import-not-found, unused-ignore]

        pynvml.nvmlInit()
        try:
            count = int(pynvml.nvmlDeviceGetCount())
        finally:
            pynvml.nvmlShutdown()
    except Exception:
        count = 0
    devices = [str(index) for index in range(count)]
    if visible is not None:
        allowed = parse_gpus(visible) or []
        devices = [device for device in devices if device in allowed] if devices else allowed
    return devices
