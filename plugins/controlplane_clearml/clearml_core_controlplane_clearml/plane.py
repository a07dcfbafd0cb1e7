"""The ClearML control plane: clearml-core's agent and CLI on the queues and tasks of a ClearML API server.

Every operation is one or a few calls of ClearML's published REST API (the ones ClearML's SDK
and clearml-agent make), so the same client works against ``clearml-core server`` and ClearML's
own server:

* tasks: ``tasks.create`` / ``get_by_id`` / ``get_all`` / ``edit`` / ``delete``, the record
  converted by :mod:`.convert`; projects and queues are named by their ids there, which
  :mod:`.names` looks up by name (and remembers);
* a run: ``queues.get_next_task`` then ``tasks.started`` with the worker in ``X-ClearML-Worker``
  (the server hands a queue entry out once), ``tasks.completed`` / ``failed`` / ``stopped``,
  ``tasks.stop`` (a running task shows ``status_message: stopping`` until its worker stops it);
* logs: ``events.add_batch`` of ``log`` events, read back with ``events.get_task_log``;
* workers: ``workers.register`` / ``status_report`` / ``unregister`` / ``get_all`` and runtime
  properties;
* waiting for tasks: ``queues.wait_for_tasks``, a long poll that only ``clearml-core server`` has
  and announces when the client signs in (:meth:`ClearMLControlPlane.wait_for_tasks`); a server
  that does not announce it (ClearML's own) is never sent it, and its queues are polled.

What the API cannot make atomic is checked first and then done: ``expected_worker`` of
``set_status`` and ``requeue``, and a requeue (a reset and an enqueue at the head). The server
keeps its own clock, so the plane's :attr:`clock` stamps nothing, and runs its own watchdog, so no
daemon gets the lease for it. A ClearML server gives tasks their ids, so a task with an id of its
own cannot be stored (``controlplane migrate`` to it).
"""

from __future__ import annotations

import contextlib
import re
import socket
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from clearml_core.controlplane import (
    CLEARML_SCHEME_PREFIX,
    FINAL_STATUSES,
    AlreadyExistsError,
    ControlPlane,
    ControlPlaneError,
    InvalidTransitionError,
    LogEvent,
    Queue,
    QueueNotFoundError,
    RuntimeProperty,
    Task,
    TaskNotFoundError,
    TaskStatus,
    Worker,
    WorkerNotFoundError,
)
from clearml_core.controlplane.records import LAST_LOG_LINES, as_status
from clearml_core.controlplane.rules import check_editable, check_transition, refusal, with_changes
from clearml_core.errors import UserError
from clearml_core.server.taskview import epoch
from clearml_core_controlplane_clearml.convert import RUN_KEY, to_fields, to_record
from clearml_core_controlplane_clearml.names import Names
from clearml_core_controlplane_clearml.session import ApiFailure, ApiSession

if TYPE_CHECKING:
    import threading

    from clearml_core.config import Config

# ClearML server's result subcodes (400) that name what was not found, or a refused change
INVALID_TASK_ID = 101
INVALID_QUEUE_ID = 701
INVALID_WORKER_ID = 1001
UNIQUE_VALUE_EXISTS = 801
REFUSED_CHANGES = frozenset({110, 112, 702, 703, 706})
NOT_SUPPORTED = 1

WAIT_FOR_TASKS = "queues.wait_for_tasks"
"""clearml-core server's long poll of queues, sent only to a server that announces it."""

WAIT_SLICE_SEC = 1.0
"""The longest one ``queues.wait_for_tasks`` call is held. A held request cannot be interrupted,
so the daemon's ``cancel`` (a signal, a task's end) is seen only between calls: a slice this long
sees it within about a second, and costs an idle agent one small call a second."""

RUNTIME_PROPERTIES_API = (2, 13)
"""The API version that has workers' runtime properties (ClearML server 1.0)."""

FINISH_CALLS = {
    TaskStatus.COMPLETED: "tasks.completed",
    TaskStatus.FAILED: "tasks.failed",
    TaskStatus.STOPPED: "tasks.stopped",
}
LOG_BATCH = 10000


def api_server_of(url: str) -> str:
    """``clearml+https://api.example.com`` → ``https://api.example.com``."""
    scheme, sep, rest = url.partition("://")
    if not sep or not scheme.startswith(CLEARML_SCHEME_PREFIX):
        raise UserError(f"{url!r} is not a ClearML control-plane URL; write clearml+http://HOST:8008")
    return f"{scheme[len(CLEARML_SCHEME_PREFIX) :]}://{rest}"


def _event_time(value: object) -> float:
    """An event's time: ClearML's events carry epoch milliseconds."""
    if isinstance(value, (int, float)):
        return float(value) / 1000
    return epoch(value) or 0.0


class ClearMLControlPlane(ControlPlane):
    """A :class:`ControlPlane` over a ClearML API server, through one :class:`ApiSession`."""

    def __init__(self, session: ApiSession, *, url: str | None = None) -> None:
        super().__init__()
        self.session = session
        self.url = url or f"{CLEARML_SCHEME_PREFIX}{session.url}"
        self.names = Names(self._call)

    @classmethod
    def from_url(cls, url: str, config: Config | None = None) -> ClearMLControlPlane:
        """The factory the ``clearml`` :class:`~clearml_core.specs.ControlPlaneSpec` names:
        ``api.credentials`` (or ``CLEARML_API_ACCESS_KEY`` / ``_SECRET_KEY``) sign in."""
        if config is None:
            from clearml_core.settings import get_config

            config = get_config()
        key_setting = "api.credentials.secret_key"
        session = ApiSession(
            api_server_of(url),
            config.get_str("api.credentials.access_key", "") or "",
            config.get_str(key_setting, "") or "",
            worker=socket.gethostname(),
            verify=config.get("api.verify_certificate", True),
            credentials_origin=f"api.credentials, {config.origin(key_setting)}",
        )
        session.login()
        return cls(session, url=url)

    def __repr__(self) -> str:
        return f"ClearMLControlPlane({self.url!r})"

    def close(self) -> None:
        self.session.close()

    def claim_lease(self, name: str, seconds: float) -> bool:
        """Never: a ClearML API server does the fleet's chores itself (its non-responsive task
        watchdog), so no daemon repeats them through the API."""
        return False

    # -- calls -----------------------------------------------------------------------------
    def _call(
        self,
        name: str,
        data: Mapping[str, Any] | None = None,
        *,
        task: str | None = None,
        queue: str | None = None,
        worker: str | None = None,
        header_worker: str | None = None,
    ) -> Any:
        """One API call; ClearML's errors become the protocol's (``task`` / ``queue`` / ``worker``
        name what the call is about, for the not-found errors)."""
        try:
            return self.session.call(name, data, worker=header_worker)
        except ApiFailure as failure:
            if failure.code == 400 and failure.subcode == INVALID_TASK_ID and task is not None:
                raise TaskNotFoundError(task) from None
            if failure.code == 400 and failure.subcode == INVALID_QUEUE_ID and queue is not None:
                self.names.forget_queue(queue)
                raise QueueNotFoundError(queue) from None
            if failure.code == 400 and failure.subcode == INVALID_WORKER_ID and worker is not None:
                raise WorkerNotFoundError(worker) from None
            if failure.code == 400 and failure.subcode in REFUSED_CHANGES:
                raise InvalidTransitionError(
                    f"the ClearML API server at {self.session.url} refused {failure}"
                ) from None
            raise ControlPlaneError(
                f"the ClearML API server at {self.session.url} refused {failure}"
            ) from None

    # -- tasks -----------------------------------------------------------------------------
    def _doc(self, task_id: str) -> dict[str, Any]:
        if not task_id:
            raise TaskNotFoundError(task_id)
        doc = self._call("tasks.get_by_id", {"task": task_id}, task=task_id).get("task")
        if not isinstance(doc, dict):
            raise TaskNotFoundError(task_id)
        return doc

    def _record(self, doc: Mapping[str, Any]) -> Task:
        return to_record(doc, self.names.project_name, self.names.queue_name)

    def create_task(self, task: Task) -> Task:
        if task.id:
            raise UserError(
                f"a ClearML API server gives each task its id; task {task.id} cannot be stored under its own "
                f"id on {self.url} (create it without one)"
            )
        fields = to_fields(task, self.names.project_id(task.project, create=True))
        created = self._call("tasks.create", fields)
        return self.get_task(str(created["id"]))

    def get_task(self, task_id: str) -> Task:
        return self._record(self._doc(task_id))

    def update_task(self, task_id: str, **changes: Any) -> Task:
        check_editable(changes)
        doc = self._doc(task_id)
        record = self._record(doc)
        updated = with_changes(record, changes)
        before = to_fields(record, self.names.project_id(record.project, create=False), current=doc)
        after = to_fields(updated, self.names.project_id(updated.project, create=True), current=doc)
        if "last_log_lines" in changes:
            run = dict(after["runtime"].get(RUN_KEY) or {})
            run["last_log_lines"] = list(updated.last_log_lines)
            after["runtime"][RUN_KEY] = run
        # only what changed: a server may refuse to edit fields it owns (ClearML's last_metrics, …)
        fields = {key: value for key, value in after.items() if before.get(key) != value}
        if "status_reason" in changes and updated.status_reason != record.status_reason:
            fields["status_reason"] = updated.status_reason
        if fields:
            self._call("tasks.edit", {"task": task_id, "force": True, **fields}, task=task_id)
        return self.get_task(task_id)

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
        query: dict[str, Any] = {"order_by": ["created"], "search_hidden": True}
        if status is not None:
            wanted = [status] if isinstance(status, (str, TaskStatus)) else list(status)
            query["status"] = [as_status(s).value for s in wanted]
        if project is not None:
            project_id = self.names.project_id(project, create=False)
            if project_id is None:
                return []
            query["project"] = [project_id]
        if name:
            query["name"] = re.escape(name)
        found: list[Task] = []
        page = 0
        while True:
            docs = self._call("tasks.get_all", {**query, "page": page, "page_size": 500}).get("tasks") or []
            for doc in docs:
                task = self._record(doc)
                if queue is not None and task.queue != queue:
                    continue
                if worker is not None and task.worker != worker:
                    continue
                found.append(task)
                if limit is not None and len(found) >= limit:
                    return found
            if len(docs) < 500:
                return found
            page += 1

    def delete_task(self, task_id: str, *, force: bool = False) -> None:
        task = self.get_task(task_id)
        if task.status == TaskStatus.IN_PROGRESS and not force:
            raise refusal(task, TaskStatus.CREATED, "be deleted")
        self._call("tasks.delete", {"task": task_id, "force": True}, task=task_id)

    # -- queueing --------------------------------------------------------------------------
    def enqueue(self, task_id: str, queue: str, *, front: bool = False) -> Task:
        queue_id = self.names.queue_id(queue)
        task = self.get_task(task_id)
        check_transition(task, TaskStatus.QUEUED, f"be enqueued in {queue!r}")
        self._call("tasks.enqueue", {"task": task_id, "queue": queue_id}, task=task_id, queue=queue)
        if front:
            self._call(
                "queues.move_task_to_front", {"queue": queue_id, "task": task_id}, task=task_id, queue=queue
            )
        return self.get_task(task_id)

    def dequeue(self, task_id: str) -> Task:
        task = self.get_task(task_id)
        if task.status != TaskStatus.QUEUED:
            raise refusal(task, TaskStatus.CREATED, "be dequeued")
        self._call("tasks.dequeue", {"task": task_id}, task=task_id)
        return self.get_task(task_id)

    def pop(self, queues: Sequence[str], worker_id: str) -> Task | None:
        for name in queues:
            try:
                queue_id = self.names.queue_id(name)
            except QueueNotFoundError:
                continue
            try:
                answer = self._call(
                    "queues.get_next_task", {"queue": queue_id}, queue=name, header_worker=worker_id
                )
            except QueueNotFoundError:
                continue
            entry = answer.get("entry") if isinstance(answer, dict) else None
            if not entry or not entry.get("task"):
                continue
            return self._started(str(entry["task"]), worker_id)
        return None

    def _started(self, task_id: str, worker_id: str) -> Task:
        """The task runs on ``worker_id`` (ClearML's server learns who from the worker header)."""
        self._call("tasks.started", {"task": task_id}, task=task_id, header_worker=worker_id)
        return self.get_task(task_id)

    def start(self, task_id: str, worker_id: str) -> Task:
        task = self.get_task(task_id)
        check_transition(task, TaskStatus.IN_PROGRESS, "start")
        if task.status == TaskStatus.QUEUED:
            self._call("tasks.dequeue", {"task": task_id}, task=task_id)
        return self._started(task_id, worker_id)

    def requeue(
        self, task_id: str, *, reason: str = "", front: bool = True, expected_worker: str | None = None
    ) -> Task:
        task = self.get_task(task_id)
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
        queue = task.queue
        self.create_queue(queue, exist_ok=True)
        self._call("tasks.reset", {"task": task_id, "force": True}, task=task_id)
        self._call(
            "tasks.enqueue",
            {"task": task_id, "queue": self.names.queue_id(queue), "status_reason": reason},
            task=task_id,
            queue=queue,
        )
        if front:
            self._call(
                "queues.move_task_to_front",
                {"queue": self.names.queue_id(queue), "task": task_id},
                task=task_id,
            )
        return self.get_task(task_id)

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
        new = as_status(status)
        doc = self._doc(task_id)
        task = self._record(doc)
        if new not in FINISH_CALLS:
            raise refusal(task, new, f"become {new.value} through set_status (use enqueue, pop or start)")
        check_transition(task, new)
        if expected_worker is not None and task.worker != expected_worker:
            raise InvalidTransitionError(
                f"task {task_id} is run by {task.worker}, not {expected_worker}; its status was not changed"
            )
        lines = list(last_log_lines) if last_log_lines is not None else self._last_lines(task_id)
        runtime = dict(doc.get("runtime") or {})
        runtime[RUN_KEY] = {"exit_code": exit_code, "last_log_lines": lines}
        self._call("tasks.edit", {"task": task_id, "force": True, "runtime": runtime}, task=task_id)
        data: dict[str, Any] = {"task": task_id}
        if reason is not None:
            data["status_reason"] = reason
        self._call(FINISH_CALLS[new], data, task=task_id, header_worker=task.worker)
        return self.get_task(task_id)

    def _last_lines(self, task_id: str) -> list[str]:
        lines: list[str] = []
        for event in reversed(self.read_logs(task_id)):
            lines[:0] = event.lines
            if len(lines) >= LAST_LOG_LINES:
                break
        return lines[-LAST_LOG_LINES:]

    def abort(self, task_id: str, *, reason: str = "aborted by user", force: bool = False) -> Task:
        task = self.get_task(task_id)
        if task.status == TaskStatus.STOPPED:
            return task
        if task.status in FINAL_STATUSES:
            raise refusal(task, TaskStatus.STOPPED, "be aborted")
        self._call("tasks.stop", {"task": task_id, "force": force, "status_reason": reason}, task=task_id)
        return self.get_task(task_id)

    def abort_requested(self, task_id: str) -> bool:
        return self.get_task(task_id).abort_requested

    def reset(self, task_id: str, *, force: bool = False) -> Task:
        task = self.get_task(task_id)
        if task.status == TaskStatus.IN_PROGRESS and not force:
            raise refusal(task, TaskStatus.CREATED, "be reset")
        self._call("tasks.reset", {"task": task_id, "force": True}, task=task_id)
        after = self._doc(task_id)
        if after.get("runtime"):  # a server that keeps it over a reset
            self._call("tasks.edit", {"task": task_id, "force": True, "runtime": {}}, task=task_id)
            after = self._doc(task_id)
        return self._record(after)

    # -- logs ------------------------------------------------------------------------------
    def append_logs(
        self, task_id: str, lines: Sequence[str], *, stream: str = "stdout", timestamp: float | None = None
    ) -> int:
        event = {
            "type": "log",
            "task": task_id,
            "timestamp": int((timestamp if timestamp is not None else time.time()) * 1000),
            "level": "error" if stream == "stderr" else "info",
            "worker": self.session.worker,
            "msg": "\n".join(lines),
        }
        answer = self.session.call_lines("events.add_batch", [event])
        if int(answer.get("errors") or 0):
            raise TaskNotFoundError(task_id)
        return int(self._task_log(task_id, batch_size=1).get("total") or 0)

    def _task_log(self, task_id: str, **query: Any) -> dict[str, Any]:
        if not task_id:
            raise TaskNotFoundError(task_id)
        answer = self._call("events.get_task_log", {"task": task_id, **query}, task=task_id)
        return answer if isinstance(answer, dict) else {}

    def read_logs(self, task_id: str, *, after: int = 0, limit: int | None = None) -> list[LogEvent]:
        self._doc(task_id)  # an unknown task is not found, on every server
        found: list[LogEvent] = []
        start: int | None = None
        seq = 0
        while True:
            query: dict[str, Any] = {"order": "asc", "navigate_earlier": False, "batch_size": LOG_BATCH}
            if start is not None:
                query["from_timestamp"] = start
            events = self._task_log(task_id, **query).get("events") or []
            for event in events:
                seq = int(event["seq"]) if isinstance(event.get("seq"), int) else seq + 1
                if seq <= after:
                    continue
                found.append(
                    LogEvent(
                        task_id=task_id,
                        seq=seq,
                        timestamp=_event_time(event.get("timestamp")),
                        stream="stderr"
                        if str(event.get("level")).lower() in ("error", "critical")
                        else "stdout",
                        lines=str(event.get("msg") or "").split("\n"),
                    )
                )
                if limit is not None and len(found) >= limit:
                    return found
            if len(events) < LOG_BATCH:
                return found
            start = int(events[-1].get("timestamp") or 0)

    # -- waiting ---------------------------------------------------------------------------
    def wait_for_tasks(
        self,
        queues: Sequence[str],
        timeout: float,
        *,
        cancel: threading.Event | None = None,
        poll: float = 1.0,
    ) -> bool:
        """Wait in ``queues.wait_for_tasks`` calls of at most :data:`WAIT_SLICE_SEC` when the server
        announced it (the server returns the moment a task is enqueued), else poll the queues every
        ``poll`` seconds as the protocol does (ClearML's own server). While none of ``queues``
        exists, or when one went away meanwhile, the rest of the wait polls too, so a queue made
        later is still seen; a server that refuses the call after all (restarted with it turned
        off, or another process behind the same address) is polled until the next sign-in."""
        if not self.session.offers(WAIT_FOR_TASKS):
            return super().wait_for_tasks(queues, timeout, cancel=cancel, poll=poll)
        ids = self._queue_ids_of(list(dict.fromkeys(queues)))
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or (cancel is not None and cancel.is_set()):
                return False
            if not ids:
                return super().wait_for_tasks(queues, remaining, cancel=cancel, poll=poll)
            try:
                answer = self.session.call(
                    WAIT_FOR_TASKS, {"queues": ids, "timeout": min(remaining, WAIT_SLICE_SEC)}
                )
            except ApiFailure as failure:
                if failure.code == 400 and failure.subcode == INVALID_QUEUE_ID:  # deleted meanwhile
                    for name in queues:
                        self.names.forget_queue(name)
                    ids = []
                    continue
                if failure.code == 404 or (failure.code == 400 and failure.subcode == NOT_SUPPORTED):
                    self.session.withdraw(WAIT_FOR_TASKS)
                    return super().wait_for_tasks(queues, remaining, cancel=cancel, poll=poll)
                raise ControlPlaneError(
                    f"the ClearML API server at {self.session.url} refused {failure}"
                ) from None
            if isinstance(answer, dict) and answer.get("ready"):
                return True

    # -- queues ----------------------------------------------------------------------------
    def _queue_record(self, doc: Mapping[str, Any]) -> Queue:
        entries = doc.get("entries") or []
        return Queue(
            name=str(doc["name"]),
            tasks=[str(entry["task"]) for entry in entries if isinstance(entry, dict) and entry.get("task")],
            tags=[str(tag) for tag in doc.get("tags") or []],
            created=epoch(doc.get("created")),
        )

    def create_queue(self, name: str, *, tags: Iterable[str] = (), exist_ok: bool = False) -> Queue:
        existing = self.names.find_queue(name)
        if existing is not None:
            if exist_ok:
                return self._queue_record(existing)
            raise AlreadyExistsError(f"a queue named {name!r} exists already")
        try:
            self._call("queues.create", {"name": name, "tags": list(dict.fromkeys(tags))})
        except ControlPlaneError:
            if exist_ok and self.names.find_queue(name) is not None:  # made by another client meanwhile
                return self.get_queue(name)
            raise
        return self.get_queue(name)

    def get_queue(self, name: str) -> Queue:
        doc = self.names.find_queue(name)
        if doc is None:
            raise QueueNotFoundError(name)
        return self._queue_record(doc)

    def list_queues(self) -> list[Queue]:
        docs = self._call("queues.get_all", {}).get("queues") or []
        for doc in docs:
            self.names.remember_queue(doc)
        return sorted((self._queue_record(doc) for doc in docs), key=lambda queue: queue.name)

    def delete_queue(self, name: str, *, force: bool = False) -> None:
        queue = self.get_queue(name)
        if queue.tasks and not force:
            raise InvalidTransitionError(
                f"queue {name!r} holds {len(queue.tasks)} task(s); dequeue them first, or delete it with force"
            )
        for task_id in queue.tasks:  # ClearML server leaves them queued in no queue
            with contextlib.suppress(TaskNotFoundError, InvalidTransitionError):
                self._call("tasks.dequeue", {"task": task_id}, task=task_id)
        self._call("queues.delete", {"queue": self.names.queue_id(name), "force": True}, queue=name)
        self.names.forget_queue(name)

    def tag_queue(self, name: str, *, add: Iterable[str] = (), remove: Iterable[str] = ()) -> Queue:
        queue = self.get_queue(name)
        removed = set(remove)
        tags = [tag for tag in dict.fromkeys([*queue.tags, *add]) if tag not in removed]
        self._call("queues.update", {"queue": self.names.queue_id(name), "tags": tags}, queue=name)
        return self.get_queue(name)

    # -- workers ---------------------------------------------------------------------------
    def _queue_ids_of(self, names: Sequence[str]) -> list[str]:
        ids = []
        for name in names:
            with contextlib.suppress(QueueNotFoundError):
                ids.append(self.names.queue_id(name))
        return ids

    def register_worker(
        self,
        worker_id: str,
        *,
        name: str = "",
        queues: Sequence[str] = (),
        info: Mapping[str, Any] | None = None,
    ) -> Worker:
        self._call(
            "workers.register",
            {"worker": worker_id, "queues": self._queue_ids_of(queues)},
            worker=worker_id,
            header_worker=worker_id,
        )
        return self.get_worker(worker_id)

    def heartbeat(
        self,
        worker_id: str,
        *,
        queues: Sequence[str] | None = None,
        machine_stats: Mapping[str, Any] | None = None,
    ) -> Worker:
        report: dict[str, Any] = {"worker": worker_id, "timestamp": int(time.time() * 1000)}
        if queues is not None:
            report["queues"] = self._queue_ids_of(queues)
        if machine_stats is not None:
            report["machine_stats"] = dict(machine_stats)
        self._call("workers.status_report", report, worker=worker_id, header_worker=worker_id)
        return self.get_worker(worker_id)

    def unregister_worker(self, worker_id: str) -> None:
        with contextlib.suppress(WorkerNotFoundError):
            self._call("workers.unregister", {"worker": worker_id}, worker=worker_id, header_worker=worker_id)

    def _worker_record(self, doc: Mapping[str, Any]) -> Worker:
        task = doc.get("task") or {}
        user = doc.get("user") or {}
        return Worker(
            id=str(doc["id"]),
            name=str(doc["id"]),
            queues=[
                str(q.get("name") or self.names.queue_name(str(q.get("id")))) for q in doc.get("queues") or []
            ],
            tasks=[str(task["id"])] if isinstance(task, dict) and task.get("id") else [],
            registered=epoch(doc.get("register_time")),
            last_heartbeat=epoch(doc.get("last_activity_time") or doc.get("last_report_time")),
            machine_stats=dict(doc.get("machine_stats") or {}),
            info={
                "ip": doc.get("ip"),
                "user": user.get("name") if isinstance(user, dict) else None,
                "tags": list(doc.get("tags") or []),
            },
        )

    def _worker_docs(self) -> list[dict[str, Any]]:
        return list(self._call("workers.get_all", {}).get("workers") or [])

    def get_worker(self, worker_id: str) -> Worker:
        doc = next((w for w in self._worker_docs() if w.get("id") == worker_id), None)
        if doc is None:
            raise WorkerNotFoundError(worker_id)
        worker = self._worker_record(doc)
        if not self.session.speaks(RUNTIME_PROPERTIES_API):
            return worker
        properties = self._call("workers.get_runtime_properties", {"worker": worker_id}, worker=worker_id)
        for prop in properties.get("runtime_properties") or []:
            if isinstance(prop, dict) and prop.get("key") and prop.get("value") is not None:
                worker.runtime_properties[str(prop["key"])] = RuntimeProperty(
                    str(prop["value"]), expires=epoch(prop.get("expiry"))
                )
        return worker

    def list_workers(self) -> list[Worker]:
        return sorted((self._worker_record(doc) for doc in self._worker_docs()), key=lambda w: w.id)

    def set_worker_runtime(
        self, worker_id: str, key: str, value: str | None, *, expires: float | None = None
    ) -> Worker:
        self.get_worker(worker_id)
        if not self.session.speaks(RUNTIME_PROPERTIES_API):
            raise ControlPlaneError(
                f"the ClearML API server at {self.session.url} speaks API {self.session.api_version}, without "
                f"workers' runtime properties (2.13, ClearML server 1.0); upgrade it to set {key!r}"
            )
        prop: dict[str, Any] = {"key": key, "value": value}
        if expires is not None:
            prop["expiry"] = max(1, round(expires - time.time()))
        self._call(
            "workers.set_runtime_properties",
            {"worker": worker_id, "runtime_properties": [prop]},
            worker=worker_id,
        )
        return self.get_worker(worker_id)


__all__ = ["ClearMLControlPlane", "api_server_of"]
