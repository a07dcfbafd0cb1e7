"""The Redis keys of one control plane, all under ``PREFIX:``.

==========================  ======  ===================================================================
key                         type    holds
==========================  ======  ===================================================================
``meta``                    hash    ``schema`` (layout version), ``created``
``seq``                     string  counter: the creation order of tasks (their score in the indexes)
``tasks``                   zset    every task id, in creation order
``status:STATUS``           zset    the ids of the tasks in that status
``task:ID``                 hash    one task: ``doc`` (its definition as JSON), the store-owned fields
                                    (``status``, ``worker``, ``started``, …) one JSON value each,
                                    ``schema``, ``seq``, ``logseq``, ``loglines``, ``w:WRITER`` marks
``logs:ID``                 zset    the task's log batches, scored by their ``seq``
``queues``                  hash    queue name → JSON ``{"tags": […], "created": …}``
``queue:NAME``              zset    the task ids waiting in the queue, scored by position
``qback`` / ``qfront``      hash    queue name → last position handed out at the back / the front
``ring:NAME``               zset    the queue's doorbell: waiting daemons block on it (BZPOPMIN)
``running:WORKER``          zset    the ids of the tasks the worker holds (``in_progress``)
``workers``                 set     the ids of the registered workers
``worker:ID``               string  one worker as JSON, expiring when it stops heartbeating
``lastpop:WORKER``          string  the worker's last pop, so a retried pop hands out the same task
``lease:NAME``              string  the holder of a fleet-wide chore (the watchdog), expiring
``doc:KIND``                hash    the documents of one kind (key → JSON) a front end keeps here
==========================  ======  ===================================================================
"""

from __future__ import annotations

from clearml_core.controlplane import TaskStatus

KEY_TYPES = {"meta": "hash", "seq": "string", "tasks": "zset", "queues": "hash", "workers": "set"}
"""The fixed keys and the Redis type each must have; anything else there is not ours."""


class Keys:
    """Key names under one prefix."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.base = f"{prefix}:"
        self.meta = self.base + "meta"
        self.seq = self.base + "seq"
        self.tasks = self.base + "tasks"
        self.queues = self.base + "queues"
        self.workers = self.base + "workers"
        self.qback = self.base + "qback"
        self.qfront = self.base + "qfront"

    def fixed(self) -> dict[str, str]:
        """Every fixed key with its expected type (the status indexes included)."""
        types = {self.base + name: kind for name, kind in KEY_TYPES.items()}
        types.update({self.status(status): "zset" for status in TaskStatus})
        return types

    def status(self, status: TaskStatus | str) -> str:
        return f"{self.base}status:{TaskStatus(status).value}"

    def task(self, task_id: str) -> str:
        return f"{self.base}task:{task_id}"

    def logs(self, task_id: str) -> str:
        return f"{self.base}logs:{task_id}"

    def queue(self, name: str) -> str:
        return f"{self.base}queue:{name}"

    def ring(self, name: str) -> str:
        return f"{self.base}ring:{name}"

    def running(self, worker_id: str) -> str:
        return f"{self.base}running:{worker_id}"

    def worker(self, worker_id: str) -> str:
        return f"{self.base}worker:{worker_id}"

    def lease(self, name: str) -> str:
        return f"{self.base}lease:{name}"

    def documents(self, kind: str) -> str:
        return f"{self.base}doc:{kind}"


__all__ = ["KEY_TYPES", "Keys"]
