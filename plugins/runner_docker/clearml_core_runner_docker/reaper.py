"""Containers whose agent died: found by their labels, stopped and removed.

Every task container carries the host name, the agent's pid and the agent process's start time
(``clearml-core.host``, ``clearml-core.agent-pid``, ``clearml-core.agent-started``). A container of
this host whose agent process is gone — no process with that pid, or one started at another time
(the pid was reused) — is an orphan: an agent killed with ``kill -9`` could not stop it. A daemon
starting on the machine stops orphans (SIGTERM, then SIGKILL after the grace period) and removes
them; the control plane's recovery then fails (or re-queues) their tasks as for any dead worker.
"""

from __future__ import annotations

import socket
from typing import Any

from clearml_core_runner_docker.container import LABEL_PREFIX
from clearml_core_runner_docker.engine import (
    api_errors,
    is_not_found,
    labelled_containers,
    labels_of,
    short_error,
)

HOST = f"{LABEL_PREFIX}host"
PID = f"{LABEL_PREFIX}agent-pid"
STARTED = f"{LABEL_PREFIX}agent-started"
TASK = f"{LABEL_PREFIX}task"


def agent_alive(labels: dict[str, str]) -> bool:
    """Whether the agent process a container's labels name still runs (and is the same process)."""
    import psutil

    try:
        process = psutil.Process(int(labels.get(PID, "")))
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        return abs(process.create_time() - float(labels.get(STARTED, ""))) < 0.01
    except (psutil.Error, ValueError):
        return False


def orphans(client: Any) -> list[Any]:
    """This host's task containers whose agent is gone (running or not)."""
    found = labelled_containers(client, f"{HOST}={socket.gethostname()}")
    return [container for container in found if not agent_alive(labels_of(container))]


def clean_up(client: Any, grace: float) -> list[str]:
    """Stop and remove the orphans; one line for each, for the daemon's log."""
    lines = []
    try:
        candidates = orphans(client)
    except api_errors() as error:
        return [f"cannot list the containers of dead agents: {short_error(error)}"]
    for container in candidates:
        labels = labels_of(container)
        task = labels.get(TASK, "?")
        try:
            if container.status == "running":
                container.stop(timeout=max(1, round(grace)))
            container.remove(force=True)
        except api_errors() as error:
            if is_not_found(error):  # removed since the listing: by its task's end, or another daemon
                continue
            lines.append(f"cannot remove container {container.short_id} of task {task}: {short_error(error)}")
            continue
        lines.append(
            f"removed container {container.short_id} of task {task}: its agent (pid {labels.get(PID)}) is gone"
        )
    return lines


__all__ = ["clean_up", "orphans"]
