"""The Redis control plane: one set of queues, tasks and workers for agents on many machines.

How it keeps the protocol's promises (the key layout is in :mod:`.keys`):

* **Exactly once.** ``pop`` is one Lua script: it takes the head of the first non-empty queue,
  marks the task ``in_progress`` with the worker and puts it in the worker's running set, in one
  atomic step. A worker that dies holding a task leaves it there, ``in_progress`` on a silent
  worker, for the watchdog to re-queue or fail. A pop whose reply was lost with the connection is
  retried with the same token and hands back the task it took.
* **Every other change** is a transaction: WATCH the task (and the queue list when it matters),
  read, check against the protocol's rules in Python, then MULTI/EXEC; a concurrent change makes
  EXEC fail and the change is tried again on fresh data.
* **Blocking waits.** Each queue has a doorbell (``ring:NAME``) that enqueueing rings;
  :meth:`RedisControlPlane.wait_for_tasks` blocks on the doorbells of its queues with BZPOPMIN,
  so an idle daemon sends one command per second and a new task wakes it at once.
* **Workers** are JSON records that expire when their heartbeats stop
  (after twice ``agent.watchdog.threshold_sec``); the watchdog is elected through a lease with expiry.
* **Outages.** redis-py reconnects; :class:`~.link.Link` backs off while Redis is away; what the
  worker reports about its running tasks (logs, updates, the final status) waits in an
  :class:`~.outbox.Outbox` and arrives, once, when Redis is back.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import threading
import uuid
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from importlib import resources
from typing import TYPE_CHECKING, Any

from clearml_core.controlplane import (
    DEFAULT_QUEUE,
    FINAL_STATUSES,
    AlreadyExistsError,
    ControlPlane,
    ControlPlaneError,
    InvalidTransitionError,
    LogEvent,
    QueueNotFoundError,
    Task,
    TaskNotFoundError,
    TaskStatus,
)
from clearml_core.controlplane.records import LAST_LOG_LINES, as_status
from clearml_core.controlplane.rules import (
    check_editable,
    check_transition,
    clear_run,
    new_record,
    refusal,
    run_end,
    start_run,
    with_changes,
)
from clearml_core.errors import UserError
from clearml_core_controlplane_redis.base import Pipeline, as_json
from clearml_core_controlplane_redis.documents import DocumentStore
from clearml_core_controlplane_redis.keys import Keys
from clearml_core_controlplane_redis.link import Link
from clearml_core_controlplane_redis.outbox import Outbox, Report
from clearml_core_controlplane_redis.queues import QueueStore
from clearml_core_controlplane_redis.records import (
    RECORD_FIELDS,
    SCHEMA_VERSION,
    newer_schema_error,
    task_fields,
    task_from_fields,
)
from clearml_core_controlplane_redis.settings import (
    RedisSettings,
    RedisTarget,
    parse_url,
    resolve_credentials,
)
from clearml_core_controlplane_redis.workers import WorkerStore

if TYPE_CHECKING:
    from clearml_core.config import Config

log = logging.getLogger("clearml_core.controlplane.redis")

MIN_REDIS_MAJOR = 6
LIST_BATCH = 256
"""Task records read per round trip when listing."""


def _script(name: str) -> str:
    return (resources.files(__package__) / "lua" / f"{name}.lua").read_text(encoding="utf-8")


class RedisControlPlane(QueueStore, WorkerStore, DocumentStore, ControlPlane):
    """Tasks, queues and workers in Redis (see the module docstring)."""

    def __init__(
        self,
        target: RedisTarget,
        settings: RedisSettings | None = None,
        *,
        clock: Callable[[], float] | None = None,
    ) -> None:
        super().__init__(clock=clock)
        self.target = target
        self.settings = settings or RedisSettings()
        self.url = target.url
        self.keys = Keys(target.prefix)
        self.where = target.url
        self._link = Link(target, self.settings)
        self._scripts = {
            name: self._link.client.register_script(_script(name))
            for name in ("pop", "append_logs", "lease", "init")
        }
        self._writer = uuid.uuid4().hex[:16]
        self._held: dict[str, dict[str, str]] = {}
        """The tasks this process runs (popped or started here), as their record fields then."""
        self._held_lock = threading.Lock()
        self._outbox = Outbox(self._link, max_lines=self.settings.buffer_max_lines)
        try:
            self._open()
        except BaseException:
            self._link.close()
            raise
        _OPEN_PLANES.add(self)

    @classmethod
    def from_url(cls, url: str, config: Config | None = None) -> RedisControlPlane:
        """The factory the ``redis`` :class:`~clearml_core.specs.ControlPlaneSpec` names."""
        if config is None:
            from clearml_core.settings import get_config

            config = get_config()
        settings = RedisSettings.from_config(config)
        target = resolve_credentials(parse_url(url), config, settings)
        return cls(target, settings)

    def __repr__(self) -> str:
        return f"RedisControlPlane({self.url!r})"

    def _open(self) -> None:
        keys = self.keys
        fixed = keys.fixed()
        with self._redis() as client:
            pipe = client.pipeline(transaction=False)
            pipe.info("server")
            for key in fixed:
                pipe.type(key)
            server, *found = pipe.execute()
        server_version = str(server.get("redis_version", "0"))
        if _major(server_version) < MIN_REDIS_MAJOR:
            raise ControlPlaneError(
                f"Redis at {self.where} is version {server_version}; the control plane needs Redis "
                f"{MIN_REDIS_MAJOR} or newer (ACL users, blocking waits with fractional timeouts)"
            )
        for (key, expected), kind in zip(fixed.items(), found, strict=True):
            if kind not in ("none", expected):
                raise ControlPlaneError(
                    f"the key {key!r} in Redis at {self.where} is a {kind}, not the {expected} clearml-core "
                    f"keeps there: another program uses the prefix {keys.prefix!r}; give clearml-core its "
                    "own with ?prefix=NAME in agent.control_plane"
                )
        default = as_json({"tags": [], "created": self.clock()})
        with self._redis():
            schema = self._scripts["init"](args=[keys.base, SCHEMA_VERSION, as_json(self.clock()), default])
        try:
            version = int(schema)
        except (TypeError, ValueError):
            raise ControlPlaneError(
                f"the key {keys.meta!r} in Redis at {self.where} is not clearml-core's; give clearml-core its "
                "own prefix with ?prefix=NAME in agent.control_plane"
            ) from None
        if version > SCHEMA_VERSION:
            raise newer_schema_error(f"the Redis control plane at {self.where}", version)

    def schema_version(self) -> int:
        with self._redis() as client:
            return int(client.hget(self.keys.meta, "schema") or 0)

    def close(self) -> None:
        """Deliver what waits in the outbox (``agent.redis.flush_timeout_sec``), then disconnect."""
        self._flush(self.settings.flush_timeout_sec)
        self._link.close()
        _OPEN_PLANES.discard(self)

    def _flush(self, timeout: float) -> None:
        if not self._outbox.pending:
            return
        if self._outbox.flush(timeout):
            return
        tasks = ", ".join(self._outbox.pending_tasks())
        log.error(
            "could not deliver %d report(s) about task(s) %s to the Redis control plane at %s within %g s "
            "(agent.redis.flush_timeout_sec); they stay in_progress there until the watchdog fails or "
            "re-queues them (agent.watchdog.*)",
            self._outbox.pending,
            tasks,
            self.where,
            timeout,
        )

    # -- helpers ---------------------------------------------------------------------------
    @staticmethod
    def _applied(stored: Mapping[str, str], mark: tuple[str, int] | None) -> bool:
        """Whether the report numbered ``mark`` was applied before (its reply was lost), from the
        task's hash fields."""
        if mark is None:
            return False
        return int(stored.get(f"w:{mark[0]}") or 0) >= mark[1]

    def _position(self, client: Any, queue: str, *, front: bool) -> int:
        """The next position at the back (1, 2, …) or the front (-1, -2, …) of a queue."""
        if front:
            return -int(client.hincrby(self.keys.qfront, queue, 1))
        return int(client.hincrby(self.keys.qback, queue, 1))

    def _run(self, pipe: Pipeline, task: Task, worker_id: str, seq: int) -> Task:
        old = TaskStatus(task.status)
        if task.queue:
            pipe.zrem(self.keys.queue(task.queue), task.id)
        self._save(pipe, start_run(task, worker_id, self.clock()))
        self._move(pipe, task.id, seq, old, TaskStatus.IN_PROGRESS)
        pipe.zadd(self.keys.running(worker_id), {task.id: seq})
        return task

    def _leave_worker(self, pipe: Pipeline, task: Task) -> None:
        if task.worker:
            pipe.zrem(self.keys.running(task.worker), task.id)

    def _hold(self, task: Task, fields: dict[str, str] | None = None) -> Task:
        with self._held_lock:
            self._held[task.id] = fields if fields is not None else task_fields(task)
        return task

    def _release(self, task_id: str) -> None:
        with self._held_lock:
            self._held.pop(task_id, None)

    def _holds(self, task_id: str) -> bool:
        return task_id in self._held

    def _held_copy(self, task_id: str) -> Task | None:
        with self._held_lock:
            fields = self._held.get(task_id)
        return task_from_fields(task_id, fields) if fields is not None else None

    # -- tasks -----------------------------------------------------------------------------
    def create_task(self, task: Task) -> Task:
        stored = new_record(task, self.clock())
        key = self.keys.task(stored.id)
        with self._redis() as client:
            seq = int(client.incr(self.keys.seq))

        def body(pipe: Pipeline) -> Task:
            if pipe.exists(key):
                raise AlreadyExistsError(f"a task with id {stored.id!r} exists already")
            pipe.multi()
            self._save(pipe, stored)
            pipe.hset(key, mapping={"seq": seq, "logseq": 0, "loglines": 0})
            pipe.zadd(self.keys.tasks, {stored.id: seq})
            pipe.zadd(self.keys.status(TaskStatus.CREATED), {stored.id: seq})
            return stored

        return self._transact(body, key)

    def get_task(self, task_id: str) -> Task:
        with self._redis() as client:
            return self._read(client, task_id)

    def update_task(self, task_id: str, **changes: Any) -> Task:
        check_editable(changes)
        held = self._held_copy(task_id)
        if held is None:
            return self._update(task_id, changes, None)
        delivered, result = self._outbox.submit(
            Report(task_id, "a record update", lambda number: self._update(task_id, changes, number))
        )
        return result if delivered else with_changes(held, changes)

    def _update(self, task_id: str, changes: Mapping[str, Any], number: int | None) -> Task:
        key = self.keys.task(task_id)
        mark = (self._writer, number) if number is not None else None

        def body(pipe: Pipeline) -> Task:
            task, stored = self._read_stored(pipe, task_id)
            if self._applied(stored, mark):
                return task
            updated = with_changes(task, changes)
            pipe.multi()
            self._save(pipe, updated, mark)
            return updated

        return self._transact(body, key)

    def list_tasks(
        self,
        *,
        status: TaskStatus | str | Iterable[TaskStatus | str] | None = None,
        queue: str | None = None,
        project: str | None = None,
        name: str | None = None,
        worker: str | None = None,
        limit: int | None = None,
    ) -> list[Task]:
        statuses: set[TaskStatus] | None = None
        if status is not None:
            wanted = [status] if isinstance(status, (str, TaskStatus)) else list(status)
            statuses = {as_status(s) for s in wanted}
        with self._redis() as client:
            ids = self._candidates(client, statuses, worker)
            found: list[Task] = []
            for start in range(0, len(ids), LIST_BATCH):
                chunk = ids[start : start + LIST_BATCH]
                pipe = client.pipeline(transaction=False)
                for task_id in chunk:
                    pipe.hgetall(self.keys.task(task_id))
                for task_id, fields in zip(chunk, pipe.execute(), strict=True):
                    if not fields:
                        continue  # deleted since the index was read
                    task = task_from_fields(task_id, fields)
                    if _matches(task, statuses, queue, project, name, worker):
                        found.append(task)
                        if limit is not None and len(found) >= limit:
                            return found
        return found

    def _candidates(self, client: Any, statuses: set[TaskStatus] | None, worker: str | None) -> list[str]:
        """Task ids in creation order, narrowed by the indexes where one fits."""
        if statuses is not None and not statuses:
            return []
        if statuses == {TaskStatus.IN_PROGRESS} and worker is not None:
            return list(client.zrange(self.keys.running(worker), 0, -1))
        if statuses is None:
            return list(client.zrange(self.keys.tasks, 0, -1))
        pipe = client.pipeline(transaction=False)
        for wanted in statuses:
            pipe.zrange(self.keys.status(wanted), 0, -1, withscores=True)
        scored = [pair for result in pipe.execute() for pair in result]
        return [task_id for task_id, _seq in sorted(scored, key=lambda pair: pair[1])]

    def delete_task(self, task_id: str, *, force: bool = False) -> None:
        key = self.keys.task(task_id)

        def body(pipe: Pipeline) -> None:
            task = self._read(pipe, task_id)
            if task.status == TaskStatus.IN_PROGRESS and not force:
                raise InvalidTransitionError(
                    f"task {task_id} is in_progress on {task.worker}; abort it first, or delete with --force"
                )
            pipe.multi()
            pipe.delete(key, self.keys.logs(task_id))
            pipe.zrem(self.keys.tasks, task_id)
            pipe.zrem(self.keys.status(task.status), task_id)
            if task.queue:
                pipe.zrem(self.keys.queue(task.queue), task_id)
            self._leave_worker(pipe, task)

        self._transact(body, key)
        self._release(task_id)

    # -- queueing --------------------------------------------------------------------------
    def enqueue(self, task_id: str, queue: str, *, front: bool = False) -> Task:
        key = self.keys.task(task_id)

        def body(pipe: Pipeline) -> Task:
            task, stored = self._read_stored(pipe, task_id)
            if task.status == TaskStatus.QUEUED:
                raise InvalidTransitionError(
                    f"task {task_id} is queued in {task.queue!r} already; dequeue it first to move it"
                )
            check_transition(task, TaskStatus.QUEUED, f"be enqueued to {queue!r}")
            if not pipe.hexists(self.keys.queues, queue):
                raise QueueNotFoundError(queue)
            seq = self._seq(stored)
            position = self._position(pipe, queue, front=front)  # a gap when EXEC fails: harmless
            old = TaskStatus(task.status)
            pipe.multi()
            self._push(pipe, task, queue, position)
            task.status_reason = ""
            self._save(pipe, task)
            self._move(pipe, task_id, seq, old, TaskStatus.QUEUED)
            return task

        return self._transact(body, key, self.keys.queues)

    def _push(self, pipe: Pipeline, task: Task, queue: str, position: int) -> None:
        pipe.zadd(self.keys.queue(queue), {task.id: position})
        pipe.zadd(self.keys.ring(queue), {"ring": 0})
        task.status = TaskStatus.QUEUED
        task.queue = queue
        task.queued = self.clock()

    def dequeue(self, task_id: str) -> Task:
        key = self.keys.task(task_id)

        def body(pipe: Pipeline) -> Task:
            task, stored = self._read_stored(pipe, task_id)
            if task.status != TaskStatus.QUEUED:
                raise refusal(task, TaskStatus.CREATED, "be dequeued (it is not queued)")
            seq = self._seq(stored)
            pipe.multi()
            if task.queue:
                pipe.zrem(self.keys.queue(task.queue), task_id)
            task.status = TaskStatus.CREATED
            task.queued = None
            self._save(pipe, task)
            self._move(pipe, task_id, seq, TaskStatus.QUEUED, TaskStatus.CREATED)
            return task

        return self._transact(body, key)

    def pop(self, queues: Sequence[str], worker_id: str) -> Task | None:
        names = list(dict.fromkeys(queues))
        if not names:
            return None
        token = uuid.uuid4().hex
        args = [self.keys.base, worker_id, as_json(worker_id), as_json(self.clock()), token, len(names)]
        with self._redis():
            result = self._scripts["pop"](args=[*args, *names, *RECORD_FIELDS])
        if not result:
            return None
        task_id, values = result
        fields = {name: value for name, value in zip(RECORD_FIELDS, values, strict=True) if value is not None}
        return self._hold(task_from_fields(task_id, fields), fields)

    def start(self, task_id: str, worker_id: str) -> Task:
        key = self.keys.task(task_id)

        def body(pipe: Pipeline) -> Task:
            task, stored = self._read_stored(pipe, task_id)
            check_transition(task, TaskStatus.IN_PROGRESS, "start")
            seq = self._seq(stored)
            pipe.multi()
            return self._run(pipe, task, worker_id, seq)

        return self._hold(self._transact(body, key))

    def requeue(
        self, task_id: str, *, reason: str = "", front: bool = True, expected_worker: str | None = None
    ) -> Task:
        key = self.keys.task(task_id)

        def body(pipe: Pipeline) -> Task:
            task, stored = self._read_stored(pipe, task_id)
            if task.status != TaskStatus.IN_PROGRESS:
                raise refusal(task, TaskStatus.QUEUED, "be re-queued (it is not running)")
            if expected_worker is not None and task.worker != expected_worker:
                raise InvalidTransitionError(
                    f"task {task_id} is no longer run by {expected_worker} (it runs on {task.worker})"
                )
            if not task.queue:
                raise InvalidTransitionError(
                    f"task {task_id} was started without a queue; it cannot be re-queued"
                )
            seq = self._seq(stored)
            position = self._position(pipe, task.queue, front=front)
            recreate = not pipe.hexists(self.keys.queues, task.queue)
            pipe.multi()
            if recreate:
                pipe.hset(self.keys.queues, task.queue, as_json({"tags": [], "created": self.clock()}))
            self._leave_worker(pipe, task)
            self._push(pipe, task, task.queue, position)
            task.worker = None
            task.started = None
            task.abort_requested = False
            task.status_reason = reason
            self._save(pipe, task)
            self._move(pipe, task_id, seq, TaskStatus.IN_PROGRESS, TaskStatus.QUEUED)
            return task

        task = self._transact(body, key, self.keys.queues)
        self._release(task_id)
        return task

    # -- status ----------------------------------------------------------------------------
    def set_status(
        self,
        task_id: str,
        status: TaskStatus | str,
        *,
        reason: str | None = None,
        exit_code: int | None = None,
        last_log_lines: Sequence[str] | None = None,
        expected_worker: str | None = None,
    ) -> Task:
        new = run_end(status)
        lines = list(last_log_lines) if last_log_lines is not None else None
        held = self._held_copy(task_id)
        if held is None:
            return self._set_status(task_id, new, reason, exit_code, lines, expected_worker, None)

        def deliver(number: int) -> Task:
            try:
                return self._set_status(task_id, new, reason, exit_code, lines, expected_worker, number)
            finally:
                self._release(task_id)

        delivered, result = self._outbox.submit(Report(task_id, f"the status {new.value}", deliver))
        if delivered:
            return result
        held.status, held.ended = new, self.clock()
        held.status_reason = reason if reason is not None else held.status_reason
        held.exit_code = exit_code if exit_code is not None else held.exit_code
        return held

    def _set_status(
        self,
        task_id: str,
        new: TaskStatus,
        reason: str | None,
        exit_code: int | None,
        last_log_lines: list[str] | None,
        expected_worker: str | None,
        number: int | None,
    ) -> Task:
        key = self.keys.task(task_id)
        mark = (self._writer, number) if number is not None else None

        def body(pipe: Pipeline) -> Task:
            task, stored = self._read_stored(pipe, task_id)
            if self._applied(stored, mark):
                return task
            if expected_worker is not None and (
                task.worker != expected_worker or task.status != TaskStatus.IN_PROGRESS
            ):
                raise InvalidTransitionError(
                    f"task {task_id} is no longer run by {expected_worker} (it is "
                    f"{TaskStatus(task.status).value}{' on ' + task.worker if task.worker else ''})"
                )
            check_transition(task, new)
            old = TaskStatus(task.status)
            seq = self._seq(stored)
            tail = last_log_lines if last_log_lines is not None else self._tail(pipe, task_id)
            pipe.multi()
            if old == TaskStatus.QUEUED and task.queue:
                pipe.zrem(self.keys.queue(task.queue), task_id)
            self._leave_worker(pipe, task)
            task.status = new
            task.ended = self.clock()
            if reason is not None:
                task.status_reason = reason
            if exit_code is not None:
                task.exit_code = exit_code
            task.last_log_lines = tail
            self._save(pipe, task, mark)
            self._move(pipe, task_id, seq, old, new)
            return task

        return self._transact(body, key)

    def _tail(self, reader: Any, task_id: str, count: int = LAST_LOG_LINES) -> list[str]:
        lines: list[str] = []
        for member in reversed(reader.zrange(self.keys.logs(task_id), -count, -1)):
            lines[:0] = _batch(member)[3]
            if len(lines) >= count:
                break
        return lines[-count:]

    def abort(self, task_id: str, *, reason: str = "aborted by user", force: bool = False) -> Task:
        key = self.keys.task(task_id)

        def body(pipe: Pipeline) -> Task:
            task, stored = self._read_stored(pipe, task_id)
            status = TaskStatus(task.status)
            if status == TaskStatus.STOPPED:
                return task
            if status in FINAL_STATUSES:
                raise InvalidTransitionError(f"task {task_id} is {status.value} already; nothing to abort")
            if status == TaskStatus.IN_PROGRESS and not force:
                pipe.multi()
                task.abort_requested = True
                task.status_reason = reason
                self._save(pipe, task)
                return task
            seq = self._seq(stored)
            tail = self._tail(pipe, task_id)
            pipe.multi()
            if task.queue:
                pipe.zrem(self.keys.queue(task.queue), task_id)
            self._leave_worker(pipe, task)
            task.status = TaskStatus.STOPPED
            task.status_reason = reason
            task.abort_requested = status == TaskStatus.IN_PROGRESS
            task.ended = self.clock()
            task.last_log_lines = tail
            self._save(pipe, task)
            self._move(pipe, task_id, seq, status, TaskStatus.STOPPED)
            return task

        return self._transact(body, key)

    def abort_requested(self, task_id: str) -> bool:
        with self._redis() as client:
            value = client.hget(self.keys.task(task_id), "abort_requested")
        if value is None:
            raise TaskNotFoundError(task_id)
        return bool(json.loads(value))

    def reset(self, task_id: str, *, force: bool = False) -> Task:
        key = self.keys.task(task_id)

        def body(pipe: Pipeline) -> Task:
            task, stored = self._read_stored(pipe, task_id)
            if task.status == TaskStatus.IN_PROGRESS and not force:
                raise InvalidTransitionError(
                    f"task {task_id} is in_progress on {task.worker}; abort it first, or reset with --force"
                )
            old = TaskStatus(task.status)
            seq = self._seq(stored)
            pipe.multi()
            if task.queue:
                pipe.zrem(self.keys.queue(task.queue), task_id)
            self._leave_worker(pipe, task)
            pipe.delete(self.keys.logs(task_id))
            pipe.hset(key, mapping={"logseq": 0, "loglines": 0})
            self._save(pipe, clear_run(task))
            self._move(pipe, task_id, seq, old, TaskStatus.CREATED)
            return task

        task = self._transact(body, key)
        self._release(task_id)
        return task

    # -- logs ------------------------------------------------------------------------------
    def append_logs(
        self, task_id: str, lines: Sequence[str], *, stream: str = "stdout", timestamp: float | None = None
    ) -> int:
        """Returns the batch's ``seq``; 0 while it waits in the outbox (Redis away, the task running here)."""
        if isinstance(lines, str):
            raise TypeError("append_logs takes a sequence of lines, not one string")
        stamp = self.clock() if timestamp is None else timestamp
        texts = [str(line) for line in lines]
        batch = as_json([stamp, stream, texts])
        if not self._holds(task_id):
            return self._append(task_id, batch, len(texts), None)
        delivered, result = self._outbox.submit(
            Report(
                task_id,
                f"{len(texts)} log line(s)",
                lambda number: self._append(task_id, batch, len(texts), number),
                lines=len(texts),
            )
        )
        return int(result) if delivered else 0

    def _append(self, task_id: str, batch: str, count: int, number: int | None) -> int:
        writer, mark = (self._writer, str(number)) if number is not None else ("", "")
        args: list[str | int] = [
            self.keys.base,
            task_id,
            as_json(self.clock()),
            batch,
            count,
            self.settings.max_log_lines,
            writer,
            mark,
        ]
        with self._redis():
            seq = int(self._scripts["append_logs"](args=args))
        if seq < 0:
            raise TaskNotFoundError(task_id)
        return seq

    def read_logs(self, task_id: str, *, after: int = 0, limit: int | None = None) -> list[LogEvent]:
        with self._redis() as client:
            if limit is not None:
                members = client.zrangebyscore(self.keys.logs(task_id), f"({after}", "+inf", 0, int(limit))
            else:
                members = client.zrangebyscore(self.keys.logs(task_id), f"({after}", "+inf")
            if not members and not client.exists(self.keys.task(task_id)):
                raise TaskNotFoundError(task_id)
        events = []
        for member in members:
            seq, stamp, stream, lines = _batch(member)
            events.append(LogEvent(task_id, seq, stamp, stream, lines))
        return events


def _major(version: str) -> int:
    head = version.split(".", 1)[0]
    return int(head) if head.isdigit() else 0


def _batch(member: str) -> tuple[int, float, str, list[str]]:
    """A stored log batch ``"SEQ COUNT [timestamp, stream, lines]"``."""
    seq, _count, body = member.split(" ", 2)
    stamp, stream, lines = json.loads(body)
    return int(seq), float(stamp), str(stream), list(lines)


def _matches(
    task: Task,
    statuses: set[TaskStatus] | None,
    queue: str | None,
    project: str | None,
    name: str | None,
    worker: str | None,
) -> bool:
    return (
        (statuses is None or TaskStatus(task.status) in statuses)
        and (queue is None or task.queue == queue)
        and (project is None or task.project == project)
        and (worker is None or task.worker == worker)
        and (name is None or name in task.name)
    )


def _queue_name(name: str) -> str:
    cleaned = name.strip()
    if not cleaned:
        raise UserError("a queue needs a name")
    return cleaned


_OPEN_PLANES: weakref.WeakSet[RedisControlPlane] = weakref.WeakSet()


@atexit.register
def _flush_at_exit() -> None:
    """A process that ends (a daemon stopped while Redis was away) delivers what it holds first."""
    for plane in list(_OPEN_PLANES):
        with contextlib.suppress(Exception):
            plane._flush(plane.settings.flush_timeout_sec)


__all__ = ["DEFAULT_QUEUE", "RedisControlPlane"]
