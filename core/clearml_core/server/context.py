"""What every part of one server process shares: settings, the control plane, accounts, id maps."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from clearml_core.controlplane import ControlPlane, QueueNotFoundError
from clearml_core.server.accounts import Accounts
from clearml_core.server.auth import Authenticator
from clearml_core.server.errors import api_error
from clearml_core.server.ids import queue_id
from clearml_core.server.projects import Projects
from clearml_core.server.settings import ServerSettings


class QueueIds:
    """Queue id → name, learnt from the control plane's queue list (ids are derived from names)."""

    def __init__(self, plane: ControlPlane) -> None:
        self.plane = plane
        self._names: dict[str, str] = {}
        self._lock = threading.Lock()

    def name(self, queue: str) -> str:
        """The name of the queue with id ``queue`` (a name is taken as is), else 400 invalid queue id."""
        found = self._names.get(queue)
        if found is not None:
            return found
        self.refresh()
        found = self._names.get(queue)
        if found is not None:
            return found
        try:
            self.plane.get_queue(queue)  # clients of clearml-core's own CLI name queues
        except QueueNotFoundError:
            raise api_error("invalid_queue_id", id=queue) from None
        return queue

    def refresh(self) -> None:
        names = {queue_id(q.name): q.name for q in self.plane.list_queues()}
        with self._lock:
            self._names = names

    def remember(self, name: str) -> str:
        with self._lock:
            self._names[queue_id(name)] = name
        return queue_id(name)


class WorkerIds:
    """Which registered worker a call comes from, when its ``X-ClearML-Worker`` header does not say.

    clearml-agent registers and reports as its worker id (``host:cpu``, ``agent.worker_id``) but
    sends its host name in the header of every other call, ``queues.get_next_task`` included. The
    control plane records who runs a task, so the server takes the registered worker that polls
    from the same address with the same credentials and listens to that queue, when exactly one
    does; else the header's name. The registered workers are read at most every few seconds.
    """

    def __init__(
        self, plane: ControlPlane, *, ttl: float = 5.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.plane = plane
        self.ttl = ttl
        self.clock = clock
        self._workers: list[tuple[str, str, str, tuple[str, ...]]] = []
        self._read_at = float("-inf")
        self._lock = threading.Lock()

    def forget(self) -> None:
        with self._lock:
            self._read_at = float("-inf")

    def _current(self) -> list[tuple[str, str, str, tuple[str, ...]]]:
        with self._lock:
            if self.clock() - self._read_at < self.ttl:
                return self._workers
        workers = [
            (w.id, str(w.info.get("ip") or ""), str(w.info.get("user") or ""), tuple(w.queues))
            for w in self.plane.list_workers()
        ]
        with self._lock:
            self._workers, self._read_at = workers, self.clock()
        return workers

    def resolve(self, header: str, address: str, user: str, queue: str) -> str:
        workers = self._current()
        if header and any(worker[0] == header for worker in workers):
            return header
        matches = [w[0] for w in workers if w[1] == address and w[2] == user and queue in w[3]]
        if len(matches) == 1:
            return matches[0]
        return header or user


@dataclass
class ServerContext:
    """One server process's state: built by :func:`clearml_core.server.app.build_context`."""

    settings: ServerSettings
    plane: ControlPlane
    accounts: Accounts
    auth: Authenticator
    upload_folder: Path
    clock: Callable[[], float] = time.time
    stopping: threading.Event = field(default_factory=threading.Event)
    """Set when the process stops (:meth:`~clearml_core.server.app.RunningServer.stop`): a call
    that waits (``queues.wait_for_tasks``) ends with it, so no request outlives the server."""
    queues: QueueIds = field(init=False)
    projects: Projects = field(init=False)
    workers: WorkerIds = field(init=False)

    def __post_init__(self) -> None:
        self.queues = QueueIds(self.plane)
        self.workers = WorkerIds(self.plane)
        self.projects = Projects(self.plane, clock=self.clock)


__all__ = ["QueueIds", "ServerContext", "WorkerIds"]
