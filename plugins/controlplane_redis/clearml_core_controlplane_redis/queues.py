"""Queues in Redis: their records, their task lists, and waiting on their doorbells."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterable, Sequence

from clearml_core.controlplane import (
    AlreadyExistsError,
    ControlPlaneError,
    InvalidTransitionError,
    Queue,
    QueueNotFoundError,
    TaskNotFoundError,
    TaskStatus,
)
from clearml_core.controlplane.rules import pause
from clearml_core.errors import UserError
from clearml_core_controlplane_redis.base import Pipeline, RedisStore, as_json
from clearml_core_controlplane_redis.link import BLOCKING_SLICE_SEC, RedisUnreachableError


class QueueStore(RedisStore):
    """The queue operations of the protocol, and :meth:`wait_for_tasks`."""

    def create_queue(self, name: str, *, tags: Iterable[str] = (), exist_ok: bool = False) -> Queue:
        name = _queue_name(name)
        queue = Queue(name=name, tags=list(dict.fromkeys(tags)), created=self.clock())
        with self._redis() as client:
            created = client.hsetnx(
                self.keys.queues, name, as_json({"tags": queue.tags, "created": queue.created})
            )
        if not created:
            if exist_ok:
                return self.get_queue(name)
            raise AlreadyExistsError(f"queue {name!r} exists already")
        return queue

    def _queue_record(self, name: str, text: str | None) -> Queue:
        if text is None:
            raise QueueNotFoundError(name)
        try:
            record = json.loads(text)
            return Queue(name=name, tags=list(record.get("tags", [])), created=record.get("created"))
        except (ValueError, AttributeError, TypeError):
            raise ControlPlaneError(
                f"the record of queue {name!r} in Redis at {self.where} is not clearml-core's; give "
                "clearml-core its own prefix with ?prefix=NAME"
            ) from None

    def get_queue(self, name: str) -> Queue:
        with self._redis() as client:
            pipe = client.pipeline(transaction=True)
            pipe.hget(self.keys.queues, name)
            pipe.zrange(self.keys.queue(name), 0, -1)
            record, ids = pipe.execute()
        queue = self._queue_record(name, record)
        queue.tasks = list(ids)
        return queue

    def list_queues(self) -> list[Queue]:
        with self._redis() as client:
            records = client.hgetall(self.keys.queues)
            names = sorted(records)
            pipe = client.pipeline(transaction=False)
            for name in names:
                pipe.zrange(self.keys.queue(name), 0, -1)
            entries = pipe.execute()
        queues = []
        for name, ids in zip(names, entries, strict=True):
            queue = self._queue_record(name, records[name])
            queue.tasks = list(ids)
            queues.append(queue)
        return queues

    def delete_queue(self, name: str, *, force: bool = False) -> None:
        queue_key = self.keys.queue(name)

        def body(pipe: Pipeline) -> None:
            if not pipe.hexists(self.keys.queues, name):
                raise QueueNotFoundError(name)
            ids = list(pipe.zrange(queue_key, 0, -1))
            if ids and not force:
                raise InvalidTransitionError(
                    f"queue {name!r} holds {len(ids)} task(s); dequeue them first, or delete it "
                    "with --force (its tasks go back to created)"
                )
            waiting = []
            for task_id in ids:
                with contextlib.suppress(TaskNotFoundError):
                    task, stored = self._read_stored(pipe, task_id)
                    if task.status == TaskStatus.QUEUED:
                        waiting.append((task, self._seq(stored)))
            pipe.multi()
            for task, seq in waiting:
                task.status = TaskStatus.CREATED
                task.queued = None
                task.status_reason = f"queue {name!r} was deleted"
                self._save(pipe, task)
                self._move(pipe, task.id, seq, TaskStatus.QUEUED, TaskStatus.CREATED)
            pipe.delete(queue_key, self.keys.ring(name))
            pipe.hdel(self.keys.queues, name)
            pipe.hdel(self.keys.qback, name)
            pipe.hdel(self.keys.qfront, name)

        self._transact(body, self.keys.queues, queue_key)

    def tag_queue(self, name: str, *, add: Iterable[str] = (), remove: Iterable[str] = ()) -> Queue:
        def body(pipe: Pipeline) -> Queue:
            queue = self._queue_record(name, pipe.hget(self.keys.queues, name))
            drop = set(remove)
            queue.tags = [tag for tag in dict.fromkeys([*queue.tags, *add]) if tag not in drop]
            queue.tasks = list(pipe.zrange(self.keys.queue(name), 0, -1))
            pipe.multi()
            pipe.hset(self.keys.queues, name, as_json({"tags": queue.tags, "created": queue.created}))
            return queue

        return self._transact(body, self.keys.queues)

    # -- waiting -------------------------------------------------------------------------
    def wait_for_tasks(
        self,
        queues: Sequence[str],
        timeout: float,
        *,
        cancel: threading.Event | None = None,
        poll: float = 1.0,
    ) -> bool:
        """Block on the queues' doorbells (BZPOPMIN), in slices of :data:`~.link.BLOCKING_SLICE_SEC` so
        ``cancel`` is seen; while Redis is away, sleep until ``timeout`` (the caller's next try)."""
        names = list(dict.fromkeys(queues))
        if not names:
            return False
        queue_keys = [self.keys.queue(name) for name in names]
        rings = [self.keys.ring(name) for name in names]
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or (cancel is not None and cancel.is_set()):
                return False
            try:
                with self._redis() as client:
                    # a doorbell may have been taken by a waiter that found other work: look first
                    if client.exists(*queue_keys):
                        return True
                    if client.bzpopmin(rings, timeout=max(0.01, min(remaining, BLOCKING_SLICE_SEC))):
                        return True
            except RedisUnreachableError:
                pause(max(0.0, deadline - time.monotonic()), cancel)
                return False


def _queue_name(name: str) -> str:
    cleaned = name.strip()
    if not cleaned:
        raise UserError("a queue needs a name")
    return cleaned


__all__ = ["QueueStore"]
