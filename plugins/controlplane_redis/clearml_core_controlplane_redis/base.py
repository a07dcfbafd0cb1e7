"""What the parts of the Redis plane share: the link to Redis, the keys, transactions, task records.

:class:`RedisStore` is the base of :class:`~.plane.RedisControlPlane` and of its parts
(:class:`~.queues.QueueStore`, :class:`~.workers.WorkerStore`, :class:`~.documents.DocumentStore`);
it holds no state of its own.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from clearml_core.controlplane import Task, TaskNotFoundError, TaskStatus
from clearml_core_controlplane_redis.keys import Keys
from clearml_core_controlplane_redis.link import Link
from clearml_core_controlplane_redis.records import task_fields, task_from_fields
from clearml_core_controlplane_redis.settings import RedisSettings

T = TypeVar("T")
Pipeline = Any
"""redis-py's client and pipeline: its annotations do not follow ``decode_responses=True``."""


def as_json(value: Any) -> str:
    return json.dumps(value)


class RedisStore:
    """Set up by :class:`~.plane.RedisControlPlane`: ``keys``, ``settings``, ``clock``, the link."""

    keys: Keys
    settings: RedisSettings
    clock: Callable[[], float]
    where: str
    _link: Link
    _scripts: dict[str, Any]
    _writer: str
    """This process's name in the ``w:WRITER`` marks and the leases."""

    def _redis(self) -> contextlib.AbstractContextManager[Any]:
        """The client, with redis-py's errors turned into clear :class:`ControlPlaneError` s."""
        return self._link.use()

    def _transact(self, body: Callable[[Pipeline], T], *watch: str) -> T:
        """``body`` reads (immediate mode), checks, then queues writes after ``pipe.multi()``;
        it runs again when a watched key changed before EXEC."""
        with self._redis() as client:
            return client.transaction(body, *watch, value_from_callable=True)

    # -- task records ----------------------------------------------------------------------
    def _read(self, reader: Any, task_id: str) -> Task:
        return self._read_stored(reader, task_id)[0]

    def _read_stored(self, reader: Any, task_id: str) -> tuple[Task, dict[str, str]]:
        """The task and its hash fields, in one round trip: the fields also hold its ``seq`` and
        the writers' report marks, which transactions would otherwise read one by one."""
        fields = reader.hgetall(self.keys.task(task_id))
        if not fields:
            raise TaskNotFoundError(task_id)
        return task_from_fields(task_id, fields), fields

    def _save(self, pipe: Pipeline, task: Task, mark: tuple[str, int] | None = None) -> None:
        task.last_update = self.clock()
        fields = task_fields(task)
        if mark is not None:
            fields[f"w:{mark[0]}"] = str(mark[1])
        pipe.hset(self.keys.task(task.id), mapping=fields)

    def _move(self, pipe: Pipeline, task_id: str, seq: int, old: TaskStatus, new: TaskStatus) -> None:
        if old != new:
            pipe.zrem(self.keys.status(old), task_id)
            pipe.zadd(self.keys.status(new), {task_id: seq})

    @staticmethod
    def _seq(stored: Mapping[str, str]) -> int:
        """The task's position in the creation order, from its hash fields."""
        return int(stored.get("seq") or 0)
