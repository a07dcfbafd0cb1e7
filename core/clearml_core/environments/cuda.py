"""Which CUDA the task's packages should be built for: configured, or detected from the driver.

``agent.cuda_version`` (also set by ``CUDA_VERSION`` / ``CLEARML_CUDA_VERSION``) wins; it may be
written ``12.1``, ``"12.1.105"`` or ``121``; ``0``, ``cpu`` or ``none`` mean CPU only. Without it
the driver is asked (``cuDriverGetVersion`` from libcuda, no process started), then
``nvidia-smi``. A task given no GPUs means CPU only; so does ``agent.cpu_only`` unless the task
was given devices explicitly (``--gpus``, which wins over the setting as it does for pinning). Package managers turn
the answer into an index or a channel (the pip plugin: PyTorch's ``cu121`` index).
"""

from __future__ import annotations

import ctypes
import re
import shutil
import subprocess
import threading
from typing import Any

_CPU_WORDS = {"", "0", "cpu", "none", "false", "no"}
_detected: list[str | None] = []
_lock = threading.Lock()


def normalize_cuda_version(value: Any) -> str | None:
    """``12.1`` / ``"12.1.105"`` / ``121`` / ``"cu121"`` → ``"12.1"``; CPU words → None.

    Raises ``ValueError`` for anything else.
    """
    if value is None or isinstance(value, bool):
        return None
    text = str(value).strip().lower()
    if text.startswith("cu"):
        text = text[2:]
    if text in _CPU_WORDS:
        return None
    match = re.fullmatch(r"(\d+)\.(\d+)(?:\.\d+)*", text)
    if match:
        major, minor = int(match.group(1)), int(match.group(2))
    elif re.fullmatch(r"\d{2,4}", text):
        major, minor = int(text[:-1]), int(text[-1])
    else:
        raise ValueError(f"{value!r} is not a CUDA version (write it like 12.1 or 121; 0 for CPU only)")
    if major == 0:
        return None
    return f"{major}.{minor}"


def _from_driver() -> str | None:
    for name in ("libcuda.so.1", "libcuda.so", "libcuda.dylib", "nvcuda.dll"):
        try:
            library = ctypes.CDLL(name)
        except OSError:
            continue
        version = ctypes.c_int(0)
        try:
            # needs no cuInit: nothing is initialised in the agent's process
            if library.cuDriverGetVersion(ctypes.byref(version)) != 0:
                return None
        except AttributeError:
            return None
        if version.value <= 0:
            return None
        return f"{version.value // 1000}.{(version.value % 1000) // 10}"
    return None


def _from_nvidia_smi() -> str | None:
    binary = shutil.which("nvidia-smi")
    if binary is None:
        return None
    try:
        output = subprocess.run([binary], capture_output=True, text=True, timeout=20, check=False).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r"CUDA Version:\s*(\d+\.\d+)", output)
    return match.group(1) if match else None


def detect_cuda_version() -> str | None:
    """The CUDA version the installed driver supports (``"12.2"``), None without a GPU driver.

    Asked once per process.
    """
    with _lock:
        if not _detected:
            _detected.append(_from_driver() or _from_nvidia_smi())
        return _detected[0]


def cuda_version_for(config: Any, gpus: list[str] | None = None) -> str | None:
    """The CUDA version to build for (``"12.1"``), or None for CPU only.

    ``gpus`` is what the task may use (None: no pinning; ``[]``: no GPU at all).
    """
    from clearml_core.errors import ConfigError

    if gpus == [] or (gpus is None and config.get_bool("agent.cpu_only", False)):
        return None
    configured = config.get("agent.cuda_version")
    if configured is not None:
        try:
            return normalize_cuda_version(configured)
        except ValueError as error:
            raise ConfigError(f"{config.origin('agent.cuda_version')}: agent.cuda_version: {error}") from None
    return detect_cuda_version()
