"""Who the daemon is: its worker id and name, and where its local files live.

As clearml-agent's configuration reference describes: ``agent.worker_id`` (``CLEARML_WORKER_ID``)
is the full id when set; otherwise the id is ``<name>:<pid>`` where the name is
``agent.worker_name`` (``CLEARML_WORKER_NAME``) or the host name. A daemon pinned to GPUs gets a
``:gpu0,1`` suffix (``:dgpu`` with ``--dynamic-gpus``, ``:cpu`` with ``--cpu-only``) on a derived
id, as clearml-agent names its workers, so two daemons of one host are told apart at a glance.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from clearml_core.config import Config

WORKER_ID_KEY = "agent.worker_id"
WORKER_NAME_KEY = "agent.worker_name"


def state_dir() -> Path:
    """``~/.clearml-core``: the embedded control plane, task folders, daemon pid and log files."""
    return Path("~/.clearml-core").expanduser()


def agent_dir() -> Path:
    return state_dir() / "agent"


def worker_name(config: Config) -> str:
    return (config.get_str(WORKER_NAME_KEY, "") or "").strip() or socket.gethostname()


def worker_id(config: Config, *, suffix: str = "", pid: int | None = None) -> str:
    """The worker id this process uses (see the module docstring)."""
    configured = (config.get_str(WORKER_ID_KEY, "") or "").strip()
    if configured:
        return configured
    base = f"{worker_name(config)}:{os.getpid() if pid is None else pid}"
    return f"{base}:{suffix}" if suffix else base


def gpu_suffix(gpus: list[str] | None, *, dynamic: bool = False) -> str:
    if dynamic:
        return "dgpu"
    if gpus is None:
        return ""
    return f"gpu{','.join(gpus)}" if gpus else "cpu"
