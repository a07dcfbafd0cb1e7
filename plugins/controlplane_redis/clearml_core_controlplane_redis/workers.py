"""Workers in Redis: JSON records that expire when heartbeats stop, and the leases of fleet chores."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from clearml_core.controlplane import RuntimeProperty, Worker, WorkerNotFoundError
from clearml_core_controlplane_redis.base import Pipeline, RedisStore
from clearml_core_controlplane_redis.records import worker_from_json, worker_json


class WorkerStore(RedisStore):
    """The worker operations of the protocol, and :meth:`claim_lease`."""

    def _load_worker(self, reader: Any, worker_id: str) -> Worker | None:
        text = reader.get(self.keys.worker(worker_id))
        return worker_from_json(worker_id, text) if text is not None else None

    def _store_worker(self, pipe: Pipeline, worker: Worker) -> None:
        pipe.set(self.keys.worker(worker.id), worker_json(worker), ex=int(self.settings.worker_ttl_sec))
        pipe.sadd(self.keys.workers, worker.id)

    def _change_worker(self, worker_id: str, change: Callable[[Worker | None], Worker]) -> Worker:
        key = self.keys.worker(worker_id)

        def body(pipe: Pipeline) -> Worker:
            worker = change(self._load_worker(pipe, worker_id))
            worker.tasks = list(pipe.zrange(self.keys.running(worker_id), 0, -1))
            pipe.multi()
            self._store_worker(pipe, worker)
            return worker

        return self._transact(body, key)

    def register_worker(
        self,
        worker_id: str,
        *,
        name: str = "",
        queues: Sequence[str] = (),
        info: Mapping[str, Any] | None = None,
    ) -> Worker:
        if not worker_id:
            raise ValueError("a worker needs an id")
        now = self.clock()

        def change(worker: Worker | None) -> Worker:
            worker = worker or Worker(id=worker_id)
            worker.name = name or worker.name or worker_id
            worker.queues = list(queues)
            worker.registered = now
            worker.last_heartbeat = now
            if info is not None:
                worker.info = dict(info)
            return worker

        return self._change_worker(worker_id, change)

    def heartbeat(
        self,
        worker_id: str,
        *,
        queues: Sequence[str] | None = None,
        machine_stats: Mapping[str, Any] | None = None,
    ) -> Worker:
        now = self.clock()

        def change(worker: Worker | None) -> Worker:
            worker = worker or Worker(id=worker_id, name=worker_id, registered=now)
            worker.last_heartbeat = now
            if queues is not None:
                worker.queues = list(queues)
            if machine_stats is not None:
                worker.machine_stats = dict(machine_stats)
            return worker

        return self._change_worker(worker_id, change)

    def unregister_worker(self, worker_id: str) -> None:
        with self._redis() as client:
            pipe = client.pipeline(transaction=True)
            pipe.delete(self.keys.worker(worker_id))
            pipe.srem(self.keys.workers, worker_id)
            pipe.execute()

    def get_worker(self, worker_id: str) -> Worker:
        with self._redis() as client:
            pipe = client.pipeline(transaction=True)
            pipe.get(self.keys.worker(worker_id))
            pipe.zrange(self.keys.running(worker_id), 0, -1)
            text, tasks = pipe.execute()
        if text is None:
            raise WorkerNotFoundError(worker_id)
        worker = worker_from_json(worker_id, text)
        worker.tasks = list(tasks)
        return worker

    def list_workers(self) -> list[Worker]:
        with self._redis() as client:
            ids = sorted(client.smembers(self.keys.workers))
            pipe = client.pipeline(transaction=False)
            for worker_id in ids:
                pipe.get(self.keys.worker(worker_id))
                pipe.zrange(self.keys.running(worker_id), 0, -1)
            results = pipe.execute()
            workers, gone = [], []
            for index, worker_id in enumerate(ids):
                text, tasks = results[2 * index], results[2 * index + 1]
                if text is None:
                    gone.append(worker_id)  # its record expired: it stopped heartbeating long ago
                    continue
                worker = worker_from_json(worker_id, text)
                worker.tasks = list(tasks)
                workers.append(worker)
            if gone:
                client.srem(self.keys.workers, *gone)
        return workers

    def set_worker_runtime(
        self, worker_id: str, key: str, value: str | None, *, expires: float | None = None
    ) -> Worker:
        def change(worker: Worker | None) -> Worker:
            if worker is None:
                raise WorkerNotFoundError(worker_id)
            if value is None:
                worker.runtime_properties.pop(key, None)
            else:
                worker.runtime_properties[key] = RuntimeProperty(str(value), expires)
            return worker

        return self._change_worker(worker_id, change)

    # -- leases ----------------------------------------------------------------------------
    def claim_lease(self, name: str, seconds: float) -> bool:
        """Take or renew the lease; never within ``seconds`` of coming back from an outage: the
        workers could not heartbeat while Redis was away, and judging their silence (the watchdog)
        must wait until they have had the time to report again."""
        if self._link.since_reconnect() < seconds:
            return False
        with self._redis():
            held = self._scripts["lease"](
                keys=[self.keys.lease(name)], args=[self._writer, int(seconds * 1000)]
            )
        return bool(held)


__all__ = ["WorkerStore"]
