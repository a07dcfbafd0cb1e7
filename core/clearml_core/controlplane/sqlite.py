"""The embedded control plane: one SQLite file shared by every process on the machine.

``sqlite:///~/.clearml-core/state.db`` (the default ``agent.control_plane``) names the file; the
URL follows SQLAlchemy's convention (``sqlite:///relative.db``, ``sqlite:////absolute.db``, and
``~`` is expanded). ``?timeout=S`` sets how long an operation waits for a lock held by another
process before it gives up with a clear error (default 30 s).

How it stays correct with many processes:

* WAL journal: readers never block the writer and the writer never blocks readers.
* Every change runs in one ``BEGIN IMMEDIATE`` transaction, which takes the write lock up front,
  so read-modify-write steps (``pop``, status changes) cannot interleave: a task is handed out
  once however many daemons poll. ``pop`` first looks, without a lock, whether any of its queues
  has an entry, so idle daemons do not fight over the write lock.
* One connection per thread and per process (a forked child opens its own and never touches the
  parent's, which would corrupt the lock state): :class:`~clearml_core.sqlite_connections.ThreadConnections`.

Tasks and workers are stored as JSON documents next to the columns that queries filter on, so
adding a record field needs no migration. The schema is versioned: ``schema_version`` holds the
number of :data:`MIGRATIONS` applied, and opening a file applies the missing ones in order. A file
written by a newer version, a file that is not a database, or one that is locked, unreadable or
corrupt is a :class:`ControlPlaneError` that names the file; it is never deleted or recreated.

This module is long (about 950 lines) on purpose: every operation is one transaction over one
schema, sharing the connection handling, the migrations and the row-to-record mapping, and the
locking argument above holds only if all of them are read together.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote

from clearml_core.controlplane.filewatch import FileChanges
from clearml_core.controlplane.protocol import (
    DEFAULT_QUEUE,
    AlreadyExistsError,
    ControlPlane,
    ControlPlaneError,
    InvalidTransitionError,
    QueueNotFoundError,
    TaskNotFoundError,
    WorkerNotFoundError,
)
from clearml_core.controlplane.records import (
    FINAL_STATUSES,
    LAST_LOG_LINES,
    LogEvent,
    Queue,
    RuntimeProperty,
    Task,
    TaskStatus,
    Worker,
    as_status,
)
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
from clearml_core.sqlite_connections import ThreadConnections

if TYPE_CHECKING:
    from clearml_core.config import Config

DEFAULT_TIMEOUT = 30.0

# -- schema -----------------------------------------------------------------------------------


def _v1(conn: sqlite3.Connection, now: float) -> None:
    for statement in (
        """CREATE TABLE tasks (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            project TEXT NOT NULL,
            status TEXT NOT NULL,
            queue TEXT,
            worker TEXT,
            created REAL,
            last_update REAL,
            abort_requested INTEGER NOT NULL DEFAULT 0,
            data TEXT NOT NULL
        )""",
        "CREATE INDEX tasks_by_status ON tasks (status, created)",
        "CREATE INDEX tasks_by_worker ON tasks (worker, status)",
        "CREATE INDEX tasks_by_created ON tasks (created)",
        """CREATE TABLE queues (
            name TEXT PRIMARY KEY,
            tags TEXT NOT NULL,
            created REAL
        )""",
        """CREATE TABLE queue_entries (
            task_id TEXT PRIMARY KEY,
            queue TEXT NOT NULL,
            position INTEGER NOT NULL
        )""",
        "CREATE INDEX queue_entries_in_order ON queue_entries (queue, position)",
        """CREATE TABLE workers (
            id TEXT PRIMARY KEY,
            last_heartbeat REAL,
            data TEXT NOT NULL
        )""",
        """CREATE TABLE task_logs (
            task_id TEXT NOT NULL,
            seq INTEGER NOT NULL,
            timestamp REAL NOT NULL,
            stream TEXT NOT NULL,
            lines TEXT NOT NULL,
            PRIMARY KEY (task_id, seq)
        ) WITHOUT ROWID""",
    ):
        conn.execute(statement)
    conn.execute("INSERT INTO queues (name, tags, created) VALUES (?, '[]', ?)", (DEFAULT_QUEUE, now))


def _v2(conn: sqlite3.Connection, now: float) -> None:
    """Documents: what a front end keeps beside the records (:meth:`ControlPlane.put_document`)."""
    conn.execute(
        """CREATE TABLE documents (
            kind TEXT NOT NULL,
            key TEXT NOT NULL,
            data TEXT NOT NULL,
            PRIMARY KEY (kind, key)
        ) WITHOUT ROWID"""
    )


MIGRATIONS: list[Callable[[sqlite3.Connection, float], None]] = [_v1, _v2]
"""Forward migrations; ``MIGRATIONS[n]`` brings a file from version ``n`` to ``n + 1``.

Append, never edit: a file in the field may be at any earlier version.
"""
SCHEMA_VERSION = len(MIGRATIONS)


# -- URL --------------------------------------------------------------------------------------


def path_from_url(url: str) -> tuple[Path, dict[str, str]]:
    """``sqlite:///~/x.db?timeout=5`` → (``/home/me/x.db``, ``{"timeout": "5"}``)."""
    scheme, sep, rest = url.partition("://")
    if scheme.lower() != "sqlite" or not sep:
        raise ControlPlaneError(f"{url!r} is not a sqlite:// URL")
    rest, _, query = rest.partition("?")
    if not rest.startswith("/") or rest in ("/", "/:memory:"):
        raise ControlPlaneError(
            f"control-plane URL {url!r} names no file; write sqlite:///relative/state.db, "
            "sqlite:////absolute/state.db or sqlite:///~/state.db (an in-memory database "
            "cannot be shared by the daemon and the CLI)"
        )
    raw = unquote(rest[1:])
    params = {key: values[-1] for key, values in parse_qs(query).items()}
    return Path(raw).expanduser().absolute(), params


# -- the plane --------------------------------------------------------------------------------


class SQLiteControlPlane(ControlPlane):
    """The embedded control plane in one SQLite file (see the module docstring)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        timeout: float = DEFAULT_TIMEOUT,
        clock: Callable[[], float] | None = None,
    ) -> None:
        super().__init__(clock=clock)
        self.path = Path(path).expanduser().absolute()
        self.timeout = timeout
        self.url = f"sqlite:///{self.path}"
        self._connections = ThreadConnections(self.path, timeout=timeout)
        self._changes = FileChanges([self.path, self.path.with_name(self.path.name + "-wal")])
        self._check_path()
        with self._errors():
            self._migrate(self._conn())

    @classmethod
    def from_url(cls, url: str, config: Config | None = None) -> SQLiteControlPlane:
        """The factory the ``sqlite`` :class:`~clearml_core.specs.ControlPlaneSpec` names."""
        path, params = path_from_url(url)
        timeout = DEFAULT_TIMEOUT
        if "timeout" in params:
            try:
                timeout = float(params["timeout"])
            except ValueError:
                raise ControlPlaneError(f"{url}: timeout must be a number of seconds") from None
        return cls(path, timeout=timeout)

    def __repr__(self) -> str:
        return f"SQLiteControlPlane({str(self.path)!r})"

    # -- connections and errors ------------------------------------------------------------
    def _check_path(self) -> None:
        path = self.path
        if path.is_dir():
            raise ControlPlaneError(
                f"control-plane file {path} is a directory; point agent.control_plane at a file "
                "inside it (sqlite:///…/state.db)"
            )
        if path.exists():
            if not os.access(path, os.R_OK | os.W_OK):
                raise ControlPlaneError(
                    f"cannot read and write the control-plane file {path}: permission denied; fix its "
                    "permissions (chmod u+rw) or set agent.control_plane to a file you own"
                )
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise ControlPlaneError(
                f"cannot create the folder of the control-plane file {path}: {error.strerror}; "
                "set agent.control_plane to a writable place"
            ) from None

    def _conn(self) -> sqlite3.Connection:
        return self._connections.get()

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.DatabaseError as error:
            raise self._explain(error) from None

    def _explain(self, error: sqlite3.DatabaseError) -> ControlPlaneError:
        text = str(error)
        lowered = text.lower()
        path = self.path
        if "locked" in lowered or "busy" in lowered:
            return ControlPlaneError(
                f"control-plane file {path} is locked: another process has held it for more than "
                f"{self.timeout:g} s; wait for it (or stop it) and retry, or raise the wait with "
                f'agent.control_plane = "sqlite:///{path}?timeout=120"'
            )
        if "not a database" in lowered or "malformed" in lowered or "corrupt" in lowered:
            return ControlPlaneError(
                f"control-plane file {path} is damaged ({text}); it was left untouched. Move it aside "
                f"to start empty (mv {path} {path}.broken), or try to rescue it with "
                f'`sqlite3 {path} ".recover" | sqlite3 {path.name}.recovered`'
            )
        if "unable to open" in lowered or "readonly" in lowered or "read-only" in lowered:
            return ControlPlaneError(
                f"cannot open the control-plane file {path} for writing ({text}); check the permissions "
                "of the file and its folder (SQLite also writes -wal and -shm files next to it)"
            )
        if "disk" in lowered or "full" in lowered or "i/o" in lowered:
            return ControlPlaneError(f"control-plane file {path}: {text}; check the disk it is on")
        return ControlPlaneError(f"control-plane file {path}: {text}")

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction that holds the lock from its first statement."""
        with self._errors():
            conn = self._conn()
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    @contextlib.contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """A consistent snapshot for reads that take several statements."""
        with self._errors():
            conn = self._conn()
            conn.execute("BEGIN")
            try:
                yield conn
            finally:
                conn.execute("COMMIT")

    def _migrate(self, conn: sqlite3.Connection) -> None:
        try:
            row = conn.execute("SELECT version FROM schema_version").fetchone()
            if row is not None and row[0] == SCHEMA_VERSION:
                return
        except sqlite3.OperationalError as error:
            if "no such table" not in str(error):
                raise
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            row = conn.execute("SELECT version FROM schema_version").fetchone()
            current = 0 if row is None else int(row[0])
            if current == 0 and self._has_foreign_tables(conn):
                raise ControlPlaneError(
                    f"{self.path} is a SQLite database of another program (it has tables but no "
                    "clearml-core schema); it was left untouched. Point agent.control_plane at "
                    "another file"
                )
            if current > SCHEMA_VERSION:
                raise ControlPlaneError(
                    f"control-plane file {self.path} has schema version {current}, written by a newer "
                    f"clearml-core (this one knows up to {SCHEMA_VERSION}); upgrade clearml-core"
                )
            now = self.clock()
            for migration in MIGRATIONS[current:]:
                migration(conn, now)
            if row is None:
                conn.execute("INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION,))
            else:
                conn.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION,))
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    @staticmethod
    def _has_foreign_tables(conn: sqlite3.Connection) -> bool:
        names = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        return bool(names - {"schema_version"})

    def schema_version(self) -> int:
        """The schema version of the file (``SCHEMA_VERSION`` once opened)."""
        with self._errors():
            row = self._conn().execute("SELECT version FROM schema_version").fetchone()
        return int(row[0]) if row else 0

    def close(self) -> None:
        self._changes.close()
        self._connections.close()

    # -- task rows -------------------------------------------------------------------------
    @staticmethod
    def _row_task(row: Sequence[Any]) -> Task:
        data, last_update, abort_requested = row
        task = Task.from_dict(json.loads(data))
        task.last_update = last_update
        task.abort_requested = bool(abort_requested)
        return task

    def _load(self, conn: sqlite3.Connection, task_id: str) -> Task:
        row = conn.execute(
            "SELECT data, last_update, abort_requested FROM tasks WHERE id = ?", (task_id,)
        ).fetchone()
        if row is None:
            raise TaskNotFoundError(task_id)
        return self._row_task(row)

    def _save(self, conn: sqlite3.Connection, task: Task, *, insert: bool = False) -> None:
        task.last_update = self.clock()
        values = (
            task.name,
            task.project,
            TaskStatus(task.status).value,
            task.queue,
            task.worker,
            task.created,
            task.last_update,
            int(task.abort_requested),
            json.dumps(task.to_dict()),
            task.id,
        )
        if insert:
            conn.execute(
                "INSERT INTO tasks (name, project, status, queue, worker, created, last_update, "
                "abort_requested, data, id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                values,
            )
        else:
            conn.execute(
                "UPDATE tasks SET name = ?, project = ?, status = ?, queue = ?, worker = ?, created = ?, "
                "last_update = ?, abort_requested = ?, data = ? WHERE id = ?",
                values,
            )

    @staticmethod
    def _unqueue(conn: sqlite3.Connection, task_id: str) -> None:
        conn.execute("DELETE FROM queue_entries WHERE task_id = ?", (task_id,))

    def _push(self, conn: sqlite3.Connection, task: Task, queue: str, *, front: bool) -> None:
        if front:
            row = conn.execute(
                "SELECT COALESCE(MIN(position), 1) - 1 FROM queue_entries WHERE queue = ?", (queue,)
            ).fetchone()
        else:
            row = conn.execute(
                "SELECT COALESCE(MAX(position), 0) + 1 FROM queue_entries WHERE queue = ?", (queue,)
            ).fetchone()
        conn.execute(
            "INSERT INTO queue_entries (task_id, queue, position) VALUES (?, ?, ?)", (task.id, queue, row[0])
        )
        now = self.clock()
        task.status = TaskStatus.QUEUED
        task.queue = queue
        task.queued = now

    @staticmethod
    def _queue_exists(conn: sqlite3.Connection, name: str) -> bool:
        return conn.execute("SELECT 1 FROM queues WHERE name = ?", (name,)).fetchone() is not None

    def _run(self, conn: sqlite3.Connection, task: Task, worker_id: str) -> Task:
        self._unqueue(conn, task.id)
        self._save(conn, start_run(task, worker_id, self.clock()))
        return task

    # -- tasks -----------------------------------------------------------------------------
    def create_task(self, task: Task) -> Task:
        stored = new_record(task, self.clock())
        with self._write() as conn:
            if conn.execute("SELECT 1 FROM tasks WHERE id = ?", (stored.id,)).fetchone():
                raise AlreadyExistsError(f"a task with id {stored.id!r} exists already")
            self._save(conn, stored, insert=True)
        return stored

    def get_task(self, task_id: str) -> Task:
        with self._errors():
            return self._load(self._conn(), task_id)

    def update_task(self, task_id: str, **changes: Any) -> Task:
        check_editable(changes)
        with self._write() as conn:
            updated = with_changes(self._load(conn, task_id), changes)
            self._save(conn, updated)
        return updated

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
        where: list[str] = []
        args: list[Any] = []
        if status is not None:
            statuses = [status] if isinstance(status, (str, TaskStatus)) else list(status)
            values = [as_status(s).value for s in statuses]
            where.append(f"status IN ({', '.join('?' * len(values))})")
            args.extend(values)
        for column, value in (("queue", queue), ("project", project), ("worker", worker)):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        if name is not None:
            where.append("instr(name, ?) > 0")
            args.append(name)
        sql = "SELECT data, last_update, abort_requested FROM tasks"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY created, rowid"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(int(limit))
        with self._errors():
            rows = self._conn().execute(sql, args).fetchall()
        return [self._row_task(row) for row in rows]

    def delete_task(self, task_id: str, *, force: bool = False) -> None:
        with self._write() as conn:
            task = self._load(conn, task_id)
            if task.status == TaskStatus.IN_PROGRESS and not force:
                raise InvalidTransitionError(
                    f"task {task_id} is in_progress on {task.worker}; abort it first, or delete with --force"
                )
            self._unqueue(conn, task_id)
            conn.execute("DELETE FROM task_logs WHERE task_id = ?", (task_id,))
            conn.execute("DELETE FROM tasks WHERE id = ?", (task_id,))

    # -- queueing --------------------------------------------------------------------------
    def enqueue(self, task_id: str, queue: str, *, front: bool = False) -> Task:
        with self._write() as conn:
            task = self._load(conn, task_id)
            if task.status == TaskStatus.QUEUED:
                raise InvalidTransitionError(
                    f"task {task_id} is queued in {task.queue!r} already; dequeue it first to move it"
                )
            check_transition(task, TaskStatus.QUEUED, f"be enqueued to {queue!r}")
            if not self._queue_exists(conn, queue):
                raise QueueNotFoundError(queue)
            self._push(conn, task, queue, front=front)
            task.status_reason = ""
            self._save(conn, task)
        return task

    def dequeue(self, task_id: str) -> Task:
        with self._write() as conn:
            task = self._load(conn, task_id)
            if task.status != TaskStatus.QUEUED:
                raise refusal(task, TaskStatus.CREATED, "be dequeued (it is not queued)")
            self._unqueue(conn, task_id)
            task.status = TaskStatus.CREATED
            task.queued = None
            self._save(conn, task)
        return task

    def pop(self, queues: Sequence[str], worker_id: str) -> Task | None:
        names = list(dict.fromkeys(queues))
        # Look before locking: idle daemons must not queue up for the write lock.
        if not self._has_entries(names):
            return None
        with self._write() as conn:
            for name in names:
                while True:
                    row = conn.execute(
                        "SELECT task_id FROM queue_entries WHERE queue = ? ORDER BY position LIMIT 1", (name,)
                    ).fetchone()
                    if row is None:
                        break
                    try:
                        return self._run(conn, self._load(conn, row[0]), worker_id)
                    except TaskNotFoundError:  # an entry whose task is gone: drop it, look again
                        self._unqueue(conn, row[0])
        return None

    def start(self, task_id: str, worker_id: str) -> Task:
        with self._write() as conn:
            task = self._load(conn, task_id)
            check_transition(task, TaskStatus.IN_PROGRESS, "start")
            return self._run(conn, task, worker_id)

    def requeue(
        self, task_id: str, *, reason: str = "", front: bool = True, expected_worker: str | None = None
    ) -> Task:
        with self._write() as conn:
            task = self._load(conn, task_id)
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
            if not self._queue_exists(conn, task.queue):
                conn.execute(
                    "INSERT INTO queues (name, tags, created) VALUES (?, '[]', ?)", (task.queue, self.clock())
                )
            self._push(conn, task, task.queue, front=front)
            task.worker = None
            task.started = None
            task.abort_requested = False
            task.status_reason = reason
            self._save(conn, task)
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
        with self._write() as conn:
            task = self._load(conn, task_id)
            if expected_worker is not None and (
                task.worker != expected_worker or task.status != TaskStatus.IN_PROGRESS
            ):
                raise InvalidTransitionError(
                    f"task {task_id} is no longer run by {expected_worker} (it is "
                    f"{TaskStatus(task.status).value}{' on ' + task.worker if task.worker else ''})"
                )
            check_transition(task, new)
            if task.status == TaskStatus.QUEUED:
                self._unqueue(conn, task_id)
            task.status = new
            task.ended = self.clock()
            if reason is not None:
                task.status_reason = reason
            if exit_code is not None:
                task.exit_code = exit_code
            task.last_log_lines = (
                list(last_log_lines) if last_log_lines is not None else self._tail(conn, task_id)
            )
            self._save(conn, task)
        return task

    @staticmethod
    def _tail(conn: sqlite3.Connection, task_id: str, count: int = LAST_LOG_LINES) -> list[str]:
        lines: list[str] = []
        for (batch,) in conn.execute(
            "SELECT lines FROM task_logs WHERE task_id = ? ORDER BY seq DESC", (task_id,)
        ):
            lines[:0] = json.loads(batch)
            if len(lines) >= count:
                break
        return lines[-count:]

    def abort(self, task_id: str, *, reason: str = "aborted by user", force: bool = False) -> Task:
        with self._write() as conn:
            task = self._load(conn, task_id)
            status = TaskStatus(task.status)
            if status == TaskStatus.STOPPED:
                return task
            if status in FINAL_STATUSES:
                raise InvalidTransitionError(f"task {task_id} is {status.value} already; nothing to abort")
            if status == TaskStatus.IN_PROGRESS and not force:
                task.abort_requested = True
                task.status_reason = reason
                self._save(conn, task)
                return task
            self._unqueue(conn, task_id)
            task.status = TaskStatus.STOPPED
            task.status_reason = reason
            task.abort_requested = status == TaskStatus.IN_PROGRESS
            task.ended = self.clock()
            task.last_log_lines = self._tail(conn, task_id)
            self._save(conn, task)
        return task

    def abort_requested(self, task_id: str) -> bool:
        with self._errors():
            row = (
                self._conn().execute("SELECT abort_requested FROM tasks WHERE id = ?", (task_id,)).fetchone()
            )
        if row is None:
            raise TaskNotFoundError(task_id)
        return bool(row[0])

    def reset(self, task_id: str, *, force: bool = False) -> Task:
        with self._write() as conn:
            task = self._load(conn, task_id)
            if task.status == TaskStatus.IN_PROGRESS and not force:
                raise InvalidTransitionError(
                    f"task {task_id} is in_progress on {task.worker}; abort it first, or reset with --force"
                )
            self._unqueue(conn, task_id)
            conn.execute("DELETE FROM task_logs WHERE task_id = ?", (task_id,))
            self._save(conn, clear_run(task))
        return task

    # -- logs ------------------------------------------------------------------------------
    def append_logs(
        self, task_id: str, lines: Sequence[str], *, stream: str = "stdout", timestamp: float | None = None
    ) -> int:
        if isinstance(lines, str):
            raise TypeError("append_logs takes a sequence of lines, not one string")
        stamp = self.clock() if timestamp is None else timestamp
        payload = json.dumps([str(line) for line in lines])
        with self._write() as conn:
            updated = conn.execute(
                "UPDATE tasks SET last_update = ? WHERE id = ?", (self.clock(), task_id)
            ).rowcount
            if not updated:
                raise TaskNotFoundError(task_id)
            (seq,) = conn.execute(
                "SELECT COALESCE(MAX(seq), 0) + 1 FROM task_logs WHERE task_id = ?", (task_id,)
            ).fetchone()
            conn.execute(
                "INSERT INTO task_logs (task_id, seq, timestamp, stream, lines) VALUES (?, ?, ?, ?, ?)",
                (task_id, seq, stamp, stream, payload),
            )
        return int(seq)

    def read_logs(self, task_id: str, *, after: int = 0, limit: int | None = None) -> list[LogEvent]:
        sql = "SELECT seq, timestamp, stream, lines FROM task_logs WHERE task_id = ? AND seq > ? ORDER BY seq"
        args: list[Any] = [task_id, after]
        if limit is not None:
            sql += " LIMIT ?"
            args.append(int(limit))
        with self._errors():
            conn = self._conn()
            rows = conn.execute(sql, args).fetchall()
            if not rows and conn.execute("SELECT 1 FROM tasks WHERE id = ?", (task_id,)).fetchone() is None:
                raise TaskNotFoundError(task_id)
        return [
            LogEvent(task_id, seq, stamp, stream, json.loads(lines)) for seq, stamp, stream, lines in rows
        ]

    # -- queues ----------------------------------------------------------------------------
    def create_queue(self, name: str, *, tags: Iterable[str] = (), exist_ok: bool = False) -> Queue:
        name = _queue_name(name)
        with self._write() as conn:
            if self._queue_exists(conn, name):
                if exist_ok:
                    return self._get_queue(conn, name)
                raise AlreadyExistsError(f"queue {name!r} exists already")
            tag_list = list(dict.fromkeys(tags))
            conn.execute(
                "INSERT INTO queues (name, tags, created) VALUES (?, ?, ?)",
                (name, json.dumps(tag_list), self.clock()),
            )
            return self._get_queue(conn, name)

    @staticmethod
    def _get_queue(conn: sqlite3.Connection, name: str) -> Queue:
        row = conn.execute("SELECT tags, created FROM queues WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise QueueNotFoundError(name)
        tasks = [
            task_id
            for (task_id,) in conn.execute(
                "SELECT task_id FROM queue_entries WHERE queue = ? ORDER BY position", (name,)
            )
        ]
        return Queue(name=name, tasks=tasks, tags=json.loads(row[0]), created=row[1])

    def get_queue(self, name: str) -> Queue:
        with self._read() as conn:
            return self._get_queue(conn, name)

    def list_queues(self) -> list[Queue]:
        with self._read() as conn:
            queues = {
                name: Queue(name=name, tags=json.loads(tags), created=created)
                for name, tags, created in conn.execute(
                    "SELECT name, tags, created FROM queues ORDER BY name"
                )
            }
            for queue, task_id in conn.execute(
                "SELECT queue, task_id FROM queue_entries ORDER BY queue, position"
            ):
                if queue in queues:
                    queues[queue].tasks.append(task_id)
        return list(queues.values())

    def delete_queue(self, name: str, *, force: bool = False) -> None:
        with self._write() as conn:
            queue = self._get_queue(conn, name)
            if queue.tasks and not force:
                raise InvalidTransitionError(
                    f"queue {name!r} holds {len(queue.tasks)} task(s); dequeue them first, or delete it "
                    "with --force (its tasks go back to created)"
                )
            for task_id in queue.tasks:
                task = self._load(conn, task_id)
                task.status = TaskStatus.CREATED
                task.queued = None
                task.status_reason = f"queue {name!r} was deleted"
                self._save(conn, task)
            conn.execute("DELETE FROM queue_entries WHERE queue = ?", (name,))
            conn.execute("DELETE FROM queues WHERE name = ?", (name,))

    def tag_queue(self, name: str, *, add: Iterable[str] = (), remove: Iterable[str] = ()) -> Queue:
        with self._write() as conn:
            queue = self._get_queue(conn, name)
            drop = set(remove)
            tags = [tag for tag in dict.fromkeys([*queue.tags, *add]) if tag not in drop]
            conn.execute("UPDATE queues SET tags = ? WHERE name = ?", (json.dumps(tags), name))
            queue.tags = tags
        return queue

    # -- documents -------------------------------------------------------------------------
    def put_document(
        self, kind: str, key: str, document: Mapping[str, Any], *, only_new: bool = False
    ) -> bool:
        data = json.dumps(dict(document))
        verb = "INSERT OR IGNORE" if only_new else "INSERT OR REPLACE"
        with self._write() as conn:
            stored = conn.execute(
                f"{verb} INTO documents (kind, key, data) VALUES (?, ?, ?)",
                (kind, key, data),
            ).rowcount
        return bool(stored)

    def get_document(self, kind: str, key: str) -> dict[str, Any] | None:
        with self._errors():
            row = (
                self._conn()
                .execute("SELECT data FROM documents WHERE kind = ? AND key = ?", (kind, key))
                .fetchone()
            )
        return None if row is None else dict(json.loads(row[0]))

    def list_documents(self, kind: str) -> dict[str, dict[str, Any]]:
        with self._errors():
            rows = (
                self._conn()
                .execute("SELECT key, data FROM documents WHERE kind = ? ORDER BY key", (kind,))
                .fetchall()
            )
        return {key: dict(json.loads(data)) for key, data in rows}

    def delete_document(self, kind: str, key: str) -> bool:
        with self._write() as conn:
            gone = conn.execute("DELETE FROM documents WHERE kind = ? AND key = ?", (kind, key)).rowcount
        return bool(gone)

    # -- waiting ---------------------------------------------------------------------------
    def wait_for_tasks(
        self,
        queues: Sequence[str],
        timeout: float,
        *,
        cancel: threading.Event | None = None,
        poll: float = 1.0,
    ) -> bool:
        """Every commit writes the database file or its write-ahead log, so a
        :class:`~clearml_core.controlplane.filewatch.FileChanges` on the two notices an enqueue
        from any process; the queues are read again only then (``poll`` is not needed)."""
        names = list(dict.fromkeys(queues))
        deadline = time.monotonic() + timeout
        with self._changes.watching() as seen:
            if self._has_entries(names):
                return True
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or (cancel is not None and cancel.is_set()):
                    return False
                now = self._changes.wait(seen, remaining, cancel)
                if now != seen:
                    seen = now
                    if self._has_entries(names):
                        return True

    def _has_entries(self, names: Sequence[str]) -> bool:
        if not names:
            return False
        marks = ", ".join("?" * len(names))
        with self._errors():
            waiting = f"SELECT 1 FROM queue_entries WHERE queue IN ({marks}) LIMIT 1"  # noqa: S608
            return self._conn().execute(waiting, list(names)).fetchone() is not None

    # -- workers ---------------------------------------------------------------------------
    def _load_worker(self, conn: sqlite3.Connection, worker_id: str) -> Worker | None:
        row = conn.execute("SELECT data, last_heartbeat FROM workers WHERE id = ?", (worker_id,)).fetchone()
        if row is None:
            return None
        worker = Worker.from_dict(json.loads(row[0]))
        worker.last_heartbeat = row[1]
        return worker

    @staticmethod
    def _save_worker(conn: sqlite3.Connection, worker: Worker) -> None:
        data = worker.to_dict()
        data.pop("tasks", None)
        conn.execute(
            "INSERT INTO workers (id, last_heartbeat, data) VALUES (?, ?, ?) "
            "ON CONFLICT (id) DO UPDATE SET last_heartbeat = excluded.last_heartbeat, data = excluded.data",
            (worker.id, worker.last_heartbeat, json.dumps(data)),
        )

    @staticmethod
    def _worker_tasks(conn: sqlite3.Connection, worker_id: str) -> list[str]:
        return [
            task_id
            for (task_id,) in conn.execute(
                "SELECT id FROM tasks WHERE worker = ? AND status = ? ORDER BY created, rowid",
                (worker_id, TaskStatus.IN_PROGRESS.value),
            )
        ]

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
        with self._write() as conn:
            worker = self._load_worker(conn, worker_id) or Worker(id=worker_id)
            worker.name = name or worker.name or worker_id
            worker.queues = list(queues)
            worker.registered = now
            worker.last_heartbeat = now
            if info is not None:
                worker.info = dict(info)
            self._save_worker(conn, worker)
            worker.tasks = self._worker_tasks(conn, worker_id)
        return worker

    def heartbeat(
        self,
        worker_id: str,
        *,
        queues: Sequence[str] | None = None,
        machine_stats: Mapping[str, Any] | None = None,
    ) -> Worker:
        now = self.clock()
        with self._write() as conn:
            worker = self._load_worker(conn, worker_id)
            if worker is None:
                worker = Worker(id=worker_id, name=worker_id, registered=now)
            worker.last_heartbeat = now
            if queues is not None:
                worker.queues = list(queues)
            if machine_stats is not None:
                worker.machine_stats = dict(machine_stats)
            self._save_worker(conn, worker)
            worker.tasks = self._worker_tasks(conn, worker_id)
        return worker

    def unregister_worker(self, worker_id: str) -> None:
        with self._write() as conn:
            conn.execute("DELETE FROM workers WHERE id = ?", (worker_id,))

    def get_worker(self, worker_id: str) -> Worker:
        with self._read() as conn:
            worker = self._load_worker(conn, worker_id)
            if worker is None:
                raise WorkerNotFoundError(worker_id)
            worker.tasks = self._worker_tasks(conn, worker_id)
        return worker

    def list_workers(self) -> list[Worker]:
        with self._read() as conn:
            workers = {}
            for data, heartbeat in conn.execute("SELECT data, last_heartbeat FROM workers ORDER BY id"):
                worker = Worker.from_dict(json.loads(data))
                worker.last_heartbeat = heartbeat
                workers[worker.id] = worker
            for task_id, worker_id in conn.execute(
                "SELECT id, worker FROM tasks WHERE status = ? AND worker IS NOT NULL ORDER BY created, rowid",
                (TaskStatus.IN_PROGRESS.value,),
            ):
                if worker_id in workers:
                    workers[worker_id].tasks.append(task_id)
        return list(workers.values())

    def set_worker_runtime(
        self, worker_id: str, key: str, value: str | None, *, expires: float | None = None
    ) -> Worker:
        with self._write() as conn:
            worker = self._load_worker(conn, worker_id)
            if worker is None:
                raise WorkerNotFoundError(worker_id)
            if value is None:
                worker.runtime_properties.pop(key, None)
            else:
                worker.runtime_properties[key] = RuntimeProperty(str(value), expires)
            self._save_worker(conn, worker)
            worker.tasks = self._worker_tasks(conn, worker_id)
        return worker


def _queue_name(name: str) -> str:
    cleaned = name.strip()
    if not cleaned:
        raise UserError("a queue needs a name")
    return cleaned


__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "SQLiteControlPlane", "path_from_url"]
