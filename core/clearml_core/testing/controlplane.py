"""The control-plane conformance suite: subclass it, provide a ``control_plane`` fixture, done.

Every control plane (the embedded SQLite one, the Redis plugin, yours) must behave the same to
the agent and the CLI. The suite checks the protocol's promises: CRUD, the status lifecycle,
FIFO order and queue priority, a task handed out exactly once under thread *and* process
concurrency, the abort flag, logs, workers with heartbeats and expiring runtime properties, queue
tags, and the watchdog working through the protocol::

    import pytest
    from clearml_core.testing.controlplane import ControlPlaneContract
    from my_plugin.store import MyControlPlane

    class TestMyControlPlane(ControlPlaneContract):
        @pytest.fixture
        def control_plane(self, my_server):
            plane = MyControlPlane(my_server.url + "/fresh-db")
            yield plane
            plane.close()

The fixture yields a plane over an **empty** store (only the ``default`` queue). Its ``url`` must
open the same store from another process with
:func:`clearml_core.controlplane.open_control_plane` (so your plugin must be installed where the
tests run). The suite replaces ``control_plane.clock`` to control time; every timestamp the
plane writes must come from it.

The suite is one class (about 680 lines) because a plugin author subclasses one class to run it.
"""

from __future__ import annotations

import multiprocessing
import threading
from collections import Counter
from typing import Any

import pytest

from clearml_core.controlplane import (
    DEFAULT_QUEUE,
    AlreadyExistsError,
    Container,
    ControlPlane,
    InvalidTransitionError,
    Parameters,
    QueueNotFoundError,
    Requirements,
    Script,
    Task,
    TaskNotFoundError,
    TaskStatus,
    WorkerNotFoundError,
)
from clearml_core.controlplane.watchdog import Watchdog, WatchdogSettings, check, recover_worker_tasks
from clearml_core.errors import NotFoundError, UserError


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now


def _consume(url: str, worker_id: str, queues: list[str], results: Any, barrier: Any) -> None:
    """A consumer process: pop until every queue is empty, report the ids it got."""
    from clearml_core.controlplane import open_control_plane

    plane = open_control_plane(url)
    barrier.wait()
    got = []
    while True:
        task = plane.pop(queues, worker_id)
        if task is None:
            break
        got.append((task.id, task.worker, str(task.status)))
    plane.close()
    results.put((worker_id, got))


class ControlPlaneContract:
    """Conformance tests every :class:`~clearml_core.controlplane.ControlPlane` must pass."""

    consumer_processes = 4
    tasks_for_processes = 200
    consumer_threads = 8
    tasks_for_threads = 200

    @pytest.fixture
    def control_plane(self) -> ControlPlane:
        raise NotImplementedError("provide a `control_plane` fixture yielding an empty ControlPlane")

    @pytest.fixture
    def plane(self, control_plane: ControlPlane) -> ControlPlane:
        return control_plane

    @pytest.fixture
    def clock(self, control_plane: ControlPlane) -> FakeClock:
        fake = FakeClock()
        control_plane.clock = fake
        return fake

    # -- helpers ---------------------------------------------------------------------------
    @staticmethod
    def new_task(plane: ControlPlane, name: str = "task", **fields: Any) -> Task:
        fields.setdefault("script", Script(folder="/src", entry_point="main.py"))
        return plane.create_task(Task(name=name, **fields))

    def queued(
        self, plane: ControlPlane, queue: str = DEFAULT_QUEUE, count: int = 1, **fields: Any
    ) -> list[Task]:
        return [plane.enqueue(self.new_task(plane, f"t{i}", **fields).id, queue) for i in range(count)]

    def running(self, plane: ControlPlane, worker: str = "w1", queue: str = DEFAULT_QUEUE) -> Task:
        self.queued(plane, queue)
        task = plane.pop([queue], worker)
        assert task is not None
        return task

    # -- tasks -----------------------------------------------------------------------------
    def test_create_assigns_id_status_and_time(self, plane: ControlPlane, clock: FakeClock) -> None:
        task = self.new_task(plane, "first", project="p")
        assert task.id
        assert task.status == TaskStatus.CREATED
        assert task.created == clock.now
        assert plane.get_task(task.id) == task
        assert self.new_task(plane).id != task.id

    def test_create_keeps_the_whole_definition(self, plane: ControlPlane) -> None:
        definition = Task(
            name="full",
            project="proj",
            script=Script(
                repository="https://example.com/r.git", branch="main", commit="abc", entry_point="a.py"
            ),
            requirements=Requirements(pip=["numpy>=1", "pandas"], frozen=["numpy==1.26.0"]),
            container=Container(image="python:3.12", arguments=["--ipc=host"], setup_script="apt-get update"),
            parameters=Parameters(argv=["--lr", "0.1"], env={"A": "1", "API_TOKEN": "secret-value"}),
            output_uri="file:///tmp/out",
            timeout=60.5,
            tags=["x"],
            runtime={"nested": {"k": [1, 2]}},
        )
        stored = plane.create_task(definition)
        again = plane.get_task(stored.id)
        for key in ("name", "project", "script", "requirements", "container", "parameters", "output_uri"):
            assert getattr(again, key) == getattr(definition, key), key
        assert again.timeout == 60.5
        assert again.runtime == {"nested": {"k": [1, 2]}}
        assert Task.from_dict(again.to_dict()) == again

    def test_create_ignores_store_owned_fields(self, plane: ControlPlane) -> None:
        task = plane.create_task(
            Task(
                name="x",
                status=TaskStatus.COMPLETED,
                worker="w",
                exit_code=3,
                started=5.0,
                abort_requested=True,
            )
        )
        assert task.status == TaskStatus.CREATED
        assert (task.worker, task.exit_code, task.started, task.abort_requested) == (None, None, None, False)

    def test_create_with_a_given_id(self, plane: ControlPlane) -> None:
        task = plane.create_task(Task(id="fixed-id", name="x"))
        assert plane.get_task("fixed-id").name == "x"
        with pytest.raises(AlreadyExistsError):
            plane.create_task(Task(id=task.id, name="y"))

    def test_unknown_task_is_not_found(self, plane: ControlPlane) -> None:
        for call in (
            lambda: plane.get_task("nope"),
            lambda: plane.enqueue("nope", DEFAULT_QUEUE),
            lambda: plane.abort("nope"),
            lambda: plane.reset("nope"),
            lambda: plane.delete_task("nope"),
            lambda: plane.append_logs("nope", ["x"]),
            lambda: plane.read_logs("nope"),
            lambda: plane.abort_requested("nope"),
            lambda: plane.set_status("nope", TaskStatus.FAILED),
        ):
            with pytest.raises(TaskNotFoundError) as info:
                call()
            assert isinstance(info.value, NotFoundError)
            assert "nope" in str(info.value)

    def test_update_task(self, plane: ControlPlane, clock: FakeClock) -> None:
        task = self.new_task(plane)
        clock.advance(5)
        updated = plane.update_task(
            task.id, name="renamed", parameters={"argv": ["-v"], "env": {}}, runtime={"commit": "abc"}
        )
        assert updated.name == "renamed"
        assert updated.parameters == Parameters(argv=["-v"])
        assert updated.last_update == clock.now
        assert plane.get_task(task.id).runtime == {"commit": "abc"}
        with pytest.raises(ValueError, match="status"):
            plane.update_task(task.id, status="completed")

    def test_list_filters_and_order(self, plane: ControlPlane, clock: FakeClock) -> None:
        plane.create_queue("other")
        a = self.new_task(plane, "alpha train", project="p1")
        clock.advance(1)
        b = self.new_task(plane, "beta train", project="p2")
        clock.advance(1)
        c = self.new_task(plane, "gamma", project="p1")
        plane.enqueue(b.id, "other")
        plane.enqueue(c.id, DEFAULT_QUEUE)
        plane.pop([DEFAULT_QUEUE], "w9")
        ids = lambda tasks: [t.id for t in tasks]  # noqa: E731
        assert ids(plane.list_tasks()) == [a.id, b.id, c.id]
        assert ids(plane.list_tasks(status="created")) == [a.id]
        assert ids(plane.list_tasks(status=[TaskStatus.QUEUED, "in_progress"])) == [b.id, c.id]
        assert ids(plane.list_tasks(queue="other")) == [b.id]
        assert ids(plane.list_tasks(project="p1")) == [a.id, c.id]
        assert ids(plane.list_tasks(name="train")) == [a.id, b.id]
        assert ids(plane.list_tasks(worker="w9")) == [c.id]
        assert ids(plane.list_tasks(limit=2)) == [a.id, b.id]
        with pytest.raises(UserError, match="status"):
            plane.list_tasks(status="running")

    def test_delete(self, plane: ControlPlane) -> None:
        queued = self.queued(plane)[0]
        plane.append_logs(queued.id, ["x"])
        plane.delete_task(queued.id)
        with pytest.raises(TaskNotFoundError):
            plane.get_task(queued.id)
        assert plane.get_queue(DEFAULT_QUEUE).tasks == []
        running = self.running(plane)
        with pytest.raises(InvalidTransitionError):
            plane.delete_task(running.id)
        plane.delete_task(running.id, force=True)
        assert plane.list_tasks() == []

    # -- lifecycle -------------------------------------------------------------------------
    def test_enqueue_and_dequeue(self, plane: ControlPlane, clock: FakeClock) -> None:
        task = self.new_task(plane)
        clock.advance(3)
        queued = plane.enqueue(task.id, DEFAULT_QUEUE)
        assert (queued.status, queued.queue, queued.queued) == (TaskStatus.QUEUED, DEFAULT_QUEUE, clock.now)
        assert plane.get_queue(DEFAULT_QUEUE).tasks == [task.id]
        with pytest.raises(InvalidTransitionError, match="queued"):
            plane.enqueue(task.id, DEFAULT_QUEUE)
        back = plane.dequeue(task.id)
        assert back.status == TaskStatus.CREATED
        assert plane.get_queue(DEFAULT_QUEUE).tasks == []
        with pytest.raises(InvalidTransitionError):
            plane.dequeue(task.id)

    def test_enqueue_to_an_unknown_queue(self, plane: ControlPlane) -> None:
        task = self.new_task(plane)
        with pytest.raises(QueueNotFoundError, match="nowhere"):
            plane.enqueue(task.id, "nowhere")
        assert plane.get_task(task.id).status == TaskStatus.CREATED

    def test_pop_runs_the_task(self, plane: ControlPlane, clock: FakeClock) -> None:
        task = self.queued(plane)[0]
        clock.advance(2)
        popped = plane.pop([DEFAULT_QUEUE], "w1")
        assert popped is not None
        assert popped.id == task.id
        assert (popped.status, popped.worker, popped.started) == (TaskStatus.IN_PROGRESS, "w1", clock.now)
        assert popped.queue == DEFAULT_QUEUE
        assert plane.get_task(task.id) == popped
        assert plane.get_queue(DEFAULT_QUEUE).tasks == []
        assert plane.pop([DEFAULT_QUEUE], "w1") is None
        assert plane.pop([], "w1") is None

    def test_completion_records_the_end(self, plane: ControlPlane, clock: FakeClock) -> None:
        task = self.running(plane)
        plane.append_logs(task.id, [f"line {i}" for i in range(80)])
        clock.advance(10)
        done = plane.set_status(task.id, TaskStatus.COMPLETED, exit_code=0)
        assert (done.status, done.exit_code, done.ended) == (TaskStatus.COMPLETED, 0, clock.now)
        assert done.last_log_lines[-1] == "line 79"
        assert 1 <= len(done.last_log_lines) <= 80
        failed = self.running(plane)
        result = plane.set_status(
            failed.id, "failed", exit_code=3, reason="exit code 3", last_log_lines=["boom"]
        )
        assert (result.status, result.exit_code, result.status_reason) == (
            TaskStatus.FAILED,
            3,
            "exit code 3",
        )
        assert result.last_log_lines == ["boom"]

    def test_final_statuses_are_final_until_reset(self, plane: ControlPlane) -> None:
        task = self.running(plane)
        plane.append_logs(task.id, ["old run"])
        plane.set_status(task.id, TaskStatus.FAILED, exit_code=1, reason="bad")
        for call in (
            lambda: plane.enqueue(task.id, DEFAULT_QUEUE),
            lambda: plane.start(task.id, "w1"),
            lambda: plane.set_status(task.id, TaskStatus.COMPLETED),
            lambda: plane.requeue(task.id),
            lambda: plane.abort(task.id),
        ):
            with pytest.raises(InvalidTransitionError):
                call()
        again = plane.reset(task.id)
        assert again.status == TaskStatus.CREATED
        assert (again.worker, again.exit_code, again.started, again.ended, again.status_reason) == (
            None,
            None,
            None,
            None,
            "",
        )
        assert again.last_log_lines == []
        assert plane.read_logs(task.id) == []
        assert plane.enqueue(task.id, DEFAULT_QUEUE).status == TaskStatus.QUEUED

    def test_statuses_that_set_status_does_not_make(self, plane: ControlPlane) -> None:
        task = self.new_task(plane)
        for status in (TaskStatus.QUEUED, TaskStatus.IN_PROGRESS, TaskStatus.CREATED):
            with pytest.raises(InvalidTransitionError):
                plane.set_status(task.id, status)
        with pytest.raises(InvalidTransitionError):
            plane.set_status(task.id, TaskStatus.COMPLETED)  # it never ran

    def test_expected_worker_guards_the_end_of_a_run(self, plane: ControlPlane) -> None:
        task = self.running(plane, "w1")
        with pytest.raises(InvalidTransitionError, match="w2"):
            plane.set_status(task.id, TaskStatus.COMPLETED, expected_worker="w2")
        assert (
            plane.set_status(task.id, TaskStatus.COMPLETED, expected_worker="w1").status
            == TaskStatus.COMPLETED
        )

    def test_start_without_a_queue(self, plane: ControlPlane) -> None:
        created = self.new_task(plane)
        started = plane.start(created.id, "w1")
        assert (started.status, started.worker) == (TaskStatus.IN_PROGRESS, "w1")
        queued = self.queued(plane)[0]
        plane.start(queued.id, "w2")
        assert plane.get_queue(DEFAULT_QUEUE).tasks == []
        with pytest.raises(InvalidTransitionError):
            plane.start(queued.id, "w3")
        with pytest.raises(InvalidTransitionError, match="queue"):
            plane.requeue(created.id)  # it never had a queue

    def test_requeue_puts_it_back_first(self, plane: ControlPlane) -> None:
        task = self.running(plane)
        waiting = self.queued(plane)[0]
        back = plane.requeue(task.id, reason="worker lost")
        assert (back.status, back.worker, back.status_reason) == (TaskStatus.QUEUED, None, "worker lost")
        assert plane.get_queue(DEFAULT_QUEUE).tasks == [task.id, waiting.id]
        with pytest.raises(InvalidTransitionError):
            plane.requeue(waiting.id)

    def test_requeue_only_from_the_expected_worker(self, plane: ControlPlane) -> None:
        task = self.running(plane, "w1")
        with pytest.raises(InvalidTransitionError, match="w2"):
            plane.requeue(task.id, expected_worker="w2")
        assert plane.get_task(task.id).worker == "w1"
        plane.requeue(task.id, expected_worker="w1")
        again = plane.pop([DEFAULT_QUEUE], "w3")
        assert again is not None
        # a watchdog that saw w1 running it must not take it from w3
        with pytest.raises(InvalidTransitionError, match="w1"):
            plane.requeue(task.id, expected_worker="w1")
        assert (plane.get_task(task.id).status, plane.get_task(task.id).worker) == (
            TaskStatus.IN_PROGRESS,
            "w3",
        )

    def test_reset_of_a_running_task_needs_force(self, plane: ControlPlane) -> None:
        task = self.running(plane)
        with pytest.raises(InvalidTransitionError):
            plane.reset(task.id)
        assert plane.reset(task.id, force=True).status == TaskStatus.CREATED
        queued = self.queued(plane)[0]
        plane.reset(queued.id)
        assert plane.get_queue(DEFAULT_QUEUE).tasks == []

    def test_clone(self, plane: ControlPlane) -> None:
        source = self.running(plane)
        plane.update_task(source.id, parameters=Parameters(argv=["-x"], env={"K": "v"}), runtime={"r": 1})
        copy = plane.clone(source.id)
        assert copy.id != source.id
        assert copy.status == TaskStatus.CREATED
        assert copy.name == f"Clone Of {source.name}"
        assert copy.parent == source.id
        assert copy.parameters == Parameters(argv=["-x"], env={"K": "v"})
        assert copy.script == source.script
        assert (copy.worker, copy.queue, copy.runtime) == (None, None, {})
        assert plane.clone(source.id, name="named", project="other").name == "named"

    def test_attributes_are_definition(self, plane: ControlPlane) -> None:
        attributes = {"type": "training", "hyperparams": {"Args": {"lr": {"value": "0.1"}}}}
        task = self.new_task(plane, attributes=attributes)
        assert plane.get_task(task.id).attributes == attributes
        plane.update_task(task.id, attributes={**attributes, "comment": "c"})
        plane.enqueue(task.id, DEFAULT_QUEUE)
        plane.pop([DEFAULT_QUEUE], "w1")
        plane.set_status(task.id, TaskStatus.COMPLETED)
        assert plane.clone(task.id).attributes["comment"] == "c"
        assert plane.reset(task.id).attributes == {**attributes, "comment": "c"}

    # -- documents -------------------------------------------------------------------------
    def test_documents(self, plane: ControlPlane) -> None:
        assert plane.get_document("projects", "p1") is None
        assert plane.list_documents("projects") == {}
        assert plane.put_document("projects", "p1", {"name": "one", "tags": ["a"]})
        assert plane.put_document("projects", "p0", {"name": "zero"})
        assert plane.put_document("users", "p1", {"name": "a user"})
        assert plane.get_document("projects", "p1") == {"name": "one", "tags": ["a"]}
        assert plane.list_documents("projects") == {
            "p0": {"name": "zero"},
            "p1": {"name": "one", "tags": ["a"]},
        }
        assert plane.put_document("projects", "p1", {"name": "uno"})
        assert plane.get_document("projects", "p1") == {"name": "uno"}
        assert not plane.put_document("projects", "p1", {"name": "other"}, only_new=True)
        assert plane.get_document("projects", "p1") == {"name": "uno"}
        assert plane.put_document("projects", "p2", {"name": "two"}, only_new=True)
        assert plane.delete_document("projects", "p1")
        assert not plane.delete_document("projects", "p1")
        assert sorted(plane.list_documents("projects")) == ["p0", "p2"]
        assert plane.get_document("users", "p1") == {"name": "a user"}

    def test_only_new_documents_are_created_once_across_threads(self, plane: ControlPlane) -> None:
        wins: list[int] = []
        start = threading.Barrier(self.consumer_threads)

        def claim(index: int) -> None:
            start.wait()
            if plane.put_document("claims", "the-one", {"by": index}, only_new=True):
                wins.append(index)

        threads = [threading.Thread(target=claim, args=(i,)) for i in range(self.consumer_threads)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(wins) == 1
        assert plane.get_document("claims", "the-one") == {"by": wins[0]}

    # -- queue order -----------------------------------------------------------------------
    def test_fifo_per_queue(self, plane: ControlPlane) -> None:
        tasks = self.queued(plane, count=5)
        urgent = plane.enqueue(self.new_task(plane, "urgent").id, DEFAULT_QUEUE, front=True)
        order = []
        while (task := plane.pop([DEFAULT_QUEUE], "w")) is not None:
            order.append(task.id)
        assert order == [urgent.id, *(t.id for t in tasks)]

    def test_queues_are_asked_in_priority_order(self, plane: ControlPlane) -> None:
        plane.create_queue("high")
        plane.create_queue("low")
        low = self.queued(plane, "low", 2)
        high = self.queued(plane, "high", 1)
        order = [plane.pop(["high", "missing", "low"], "w") for _ in range(4)]
        assert [t.id if t else None for t in order] == [high[0].id, low[0].id, low[1].id, None]

    # -- exactly once ----------------------------------------------------------------------
    def test_pop_hands_each_task_out_once_across_threads(self, plane: ControlPlane) -> None:
        expected = {t.id for t in self.queued(plane, count=self.tasks_for_threads)}
        got: list[str] = []
        errors: list[BaseException] = []
        lock = threading.Lock()
        start = threading.Barrier(self.consumer_threads)

        def consume(worker: str) -> None:
            try:
                start.wait()
                while (task := plane.pop([DEFAULT_QUEUE], worker)) is not None:
                    with lock:
                        got.append(task.id)
            except BaseException as error:  # surfaced below
                errors.append(error)

        threads = [threading.Thread(target=consume, args=(f"w{i}",)) for i in range(self.consumer_threads)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        duplicates = [task_id for task_id, n in Counter(got).items() if n > 1]
        assert duplicates == []
        assert set(got) == expected
        assert all(t.status == TaskStatus.IN_PROGRESS for t in plane.list_tasks())

    def test_pop_hands_each_task_out_once_across_processes(self, plane: ControlPlane) -> None:
        expected = {t.id for t in self.queued(plane, count=self.tasks_for_processes)}
        context = multiprocessing.get_context("spawn")
        results = context.Queue()
        barrier = context.Barrier(self.consumer_processes)
        workers = [f"proc{i}" for i in range(self.consumer_processes)]
        processes = [
            context.Process(target=_consume, args=(plane.url, worker, [DEFAULT_QUEUE], results, barrier))
            for worker in workers
        ]
        for process in processes:
            process.start()
        reports = dict(results.get(timeout=120) for _ in processes)
        for process in processes:
            process.join(timeout=60)
            assert process.exitcode == 0
        got = [task_id for worker in workers for task_id, _w, _s in reports[worker]]
        duplicates = [task_id for task_id, n in Counter(got).items() if n > 1]
        assert duplicates == []
        assert set(got) == expected
        for worker in workers:
            assert all(w == worker and s == "in_progress" for _id, w, s in reports[worker])
            stored = {t.id for t in plane.list_tasks(worker=worker)}
            assert stored == {task_id for task_id, _w, _s in reports[worker]}

    # -- waiting ---------------------------------------------------------------------------
    def test_wait_for_tasks_sees_what_is_there(self, plane: ControlPlane) -> None:
        plane.create_queue("other")
        assert plane.wait_for_tasks([DEFAULT_QUEUE, "other"], 0.1, poll=0.05) is False
        assert plane.wait_for_tasks(["missing"], 0.1, poll=0.05) is False
        self.queued(plane, "other")
        assert plane.wait_for_tasks([DEFAULT_QUEUE, "other"], 30, poll=0.05) is True

    def test_wait_for_tasks_wakes_when_a_task_is_enqueued(self, plane: ControlPlane) -> None:
        task = self.new_task(plane)
        result: list[bool] = []
        waiting = threading.Event()

        def wait() -> None:
            waiting.set()
            result.append(plane.wait_for_tasks([DEFAULT_QUEUE], 120, poll=0.05))

        waiter = threading.Thread(target=wait)
        waiter.start()
        waiting.wait(10)
        plane.enqueue(task.id, DEFAULT_QUEUE)
        waiter.join(60)
        assert not waiter.is_alive(), "wait_for_tasks did not return after the enqueue"
        assert result == [True]
        popped = plane.pop([DEFAULT_QUEUE], "w1")
        assert popped is not None and popped.id == task.id

    def test_wait_for_tasks_stops_when_cancelled(self, plane: ControlPlane) -> None:
        cancel = threading.Event()
        result: list[bool] = []
        waiter = threading.Thread(
            target=lambda: result.append(plane.wait_for_tasks([DEFAULT_QUEUE], 120, cancel=cancel, poll=0.05))
        )
        waiter.start()
        cancel.set()
        waiter.join(60)
        assert not waiter.is_alive(), "wait_for_tasks did not notice the cancel event"
        assert result == [False]

    def test_the_lease_holder_keeps_its_lease(self, plane: ControlPlane) -> None:
        assert plane.claim_lease("chore", 60) is True
        assert plane.claim_lease("chore", 60) is True

    # -- abort -----------------------------------------------------------------------------
    def test_abort_of_waiting_tasks_stops_them_at_once(self, plane: ControlPlane) -> None:
        created = self.new_task(plane)
        queued = self.queued(plane)[0]
        assert plane.abort(created.id).status == TaskStatus.STOPPED
        stopped = plane.abort(queued.id, reason="not needed")
        assert (stopped.status, stopped.status_reason) == (TaskStatus.STOPPED, "not needed")
        assert stopped.ended is not None
        assert plane.get_queue(DEFAULT_QUEUE).tasks == []
        assert plane.abort(queued.id).status == TaskStatus.STOPPED  # again: nothing happens

    def test_abort_of_a_running_task_goes_through_its_worker(self, plane: ControlPlane) -> None:
        task = self.running(plane)
        assert plane.abort_requested(task.id) is False
        flagged = plane.abort(task.id)
        assert (flagged.status, flagged.abort_requested) == (TaskStatus.IN_PROGRESS, True)
        assert plane.abort_requested(task.id) is True
        stopped = plane.set_status(task.id, TaskStatus.STOPPED, expected_worker="w1")
        assert stopped.status == TaskStatus.STOPPED
        forced = self.running(plane, "w2")
        assert plane.abort(forced.id, force=True).status == TaskStatus.STOPPED
        done = self.running(plane)
        plane.set_status(done.id, TaskStatus.COMPLETED, exit_code=0)
        with pytest.raises(InvalidTransitionError, match="completed"):
            plane.abort(done.id)

    def test_a_new_run_starts_without_the_abort_flag(self, plane: ControlPlane) -> None:
        task = self.running(plane)
        plane.abort(task.id)
        plane.set_status(task.id, TaskStatus.STOPPED)
        plane.reset(task.id)
        plane.enqueue(task.id, DEFAULT_QUEUE)
        again = plane.pop([DEFAULT_QUEUE], "w1")
        assert again is not None
        assert again.abort_requested is False
        assert plane.abort_requested(task.id) is False

    # -- logs ------------------------------------------------------------------------------
    def test_logs_append_and_read(self, plane: ControlPlane, clock: FakeClock) -> None:
        task = self.running(plane)
        other = self.running(plane)
        assert plane.read_logs(task.id) == []
        assert plane.append_logs(task.id, ["a", "b"]) == 1
        clock.advance(1)
        assert plane.append_logs(task.id, ["err"], stream="stderr") == 2
        assert plane.append_logs(other.id, ["other"]) == 1
        assert plane.append_logs(task.id, ["c"], timestamp=123.0) == 3
        events = plane.read_logs(task.id)
        assert [(e.seq, e.stream, e.lines) for e in events] == [
            (1, "stdout", ["a", "b"]),
            (2, "stderr", ["err"]),
            (3, "stdout", ["c"]),
        ]
        assert events[1].timestamp == clock.now
        assert events[2].timestamp == 123.0
        assert all(e.task_id == task.id for e in events)
        assert [e.seq for e in plane.read_logs(task.id, after=1)] == [2, 3]
        assert [e.seq for e in plane.read_logs(task.id, after=1, limit=1)] == [2]
        assert plane.read_logs(task.id, after=3) == []

    def test_logs_are_a_sign_of_life(self, plane: ControlPlane, clock: FakeClock) -> None:
        task = self.running(plane)
        clock.advance(30)
        plane.append_logs(task.id, ["still here"])
        assert plane.get_task(task.id).last_update == clock.now

    # -- workers ---------------------------------------------------------------------------
    def test_worker_register_heartbeat_unregister(self, plane: ControlPlane, clock: FakeClock) -> None:
        worker = plane.register_worker("host:1", name="host", queues=["a", "b"], info={"pid": 1})
        assert (worker.id, worker.name, worker.queues) == ("host:1", "host", ["a", "b"])
        assert worker.last_heartbeat == clock.now
        clock.advance(10)
        beat = plane.heartbeat("host:1", machine_stats={"cpu_usage": [12.5], "memory_used_gb": 1.5})
        assert beat.last_heartbeat == clock.now
        stored = plane.get_worker("host:1")
        assert stored.machine_stats == {"cpu_usage": [12.5], "memory_used_gb": 1.5}
        assert stored.queues == ["a", "b"]
        assert stored.info == {"pid": 1}
        plane.heartbeat("host:1", queues=["c"])
        assert plane.get_worker("host:1").queues == ["c"]
        plane.register_worker("host:2")
        assert [w.id for w in plane.list_workers()] == ["host:1", "host:2"]
        plane.unregister_worker("host:1")
        plane.unregister_worker("never-registered")
        assert [w.id for w in plane.list_workers()] == ["host:2"]
        with pytest.raises(WorkerNotFoundError):
            plane.get_worker("host:1")

    def test_heartbeat_of_an_unknown_worker_registers_it(self, plane: ControlPlane) -> None:
        plane.heartbeat("ghost", queues=["q"])
        assert plane.get_worker("ghost").queues == ["q"]

    def test_worker_tasks_follow_their_runs(self, plane: ControlPlane) -> None:
        plane.register_worker("w1")
        first = self.running(plane, "w1")
        second = self.running(plane, "w1")
        assert plane.get_worker("w1").tasks == [first.id, second.id]
        assert plane.get_worker("w1").task == first.id
        plane.set_status(first.id, TaskStatus.COMPLETED, exit_code=0)
        assert [w.tasks for w in plane.list_workers()] == [[second.id]]

    def test_runtime_properties_expire(self, plane: ControlPlane, clock: FakeClock) -> None:
        plane.register_worker("w1")
        worker = plane.set_worker_runtime("w1", "force", "on", expires=clock.now + 60)
        assert worker.runtime_value("force", clock.now) == "on"
        plane.set_worker_runtime("w1", "note", "kept")
        stored = plane.get_worker("w1")
        assert stored.runtime_value("force", clock.now + 59) == "on"
        assert stored.runtime_value("force", clock.now + 60) is None
        assert stored.runtime_value("note", clock.now + 10**6) == "kept"
        plane.register_worker("w1", queues=["q"])  # a restart keeps them
        assert plane.get_worker("w1").runtime_value("note", clock.now) == "kept"
        plane.set_worker_runtime("w1", "note", None)
        assert "note" not in plane.get_worker("w1").runtime_properties
        with pytest.raises(WorkerNotFoundError):
            plane.set_worker_runtime("nobody", "force", "off")

    # -- queues ----------------------------------------------------------------------------
    def test_queue_crud(self, plane: ControlPlane) -> None:
        assert [q.name for q in plane.list_queues()] == [DEFAULT_QUEUE]
        created = plane.create_queue("gpu", tags=["a", "a", "b"])
        assert (created.name, created.tasks, created.tags) == ("gpu", [], ["a", "b"])
        with pytest.raises(AlreadyExistsError):
            plane.create_queue("gpu")
        assert plane.create_queue("gpu", exist_ok=True).tags == ["a", "b"]
        plane.create_queue("cpu")
        assert [q.name for q in plane.list_queues()] == ["cpu", DEFAULT_QUEUE, "gpu"]
        tasks = self.queued(plane, "gpu", 2)
        assert [q.tasks for q in plane.list_queues() if q.name == "gpu"] == [[t.id for t in tasks]]
        plane.delete_queue("cpu")
        with pytest.raises(QueueNotFoundError):
            plane.get_queue("cpu")
        with pytest.raises(QueueNotFoundError):
            plane.delete_queue("cpu")

    def test_deleting_a_queue_with_tasks_needs_force(self, plane: ControlPlane) -> None:
        plane.create_queue("gpu")
        tasks = self.queued(plane, "gpu", 2)
        with pytest.raises(InvalidTransitionError, match="2"):
            plane.delete_queue("gpu")
        plane.delete_queue("gpu", force=True)
        assert {plane.get_task(t.id).status for t in tasks} == {TaskStatus.CREATED}
        assert plane.pop(["gpu"], "w") is None

    def test_queue_tags(self, plane: ControlPlane) -> None:
        tagged = plane.tag_queue(DEFAULT_QUEUE, add=["force_workers:on", "gpu"])
        assert tagged.tags == ["force_workers:on", "gpu"]
        changed = plane.tag_queue(
            DEFAULT_QUEUE, add=["force_workers:off", "gpu"], remove=["force_workers:on"]
        )
        assert changed.tags == ["gpu", "force_workers:off"]
        assert plane.get_queue(DEFAULT_QUEUE).tags == ["gpu", "force_workers:off"]
        with pytest.raises(QueueNotFoundError):
            plane.tag_queue("missing", add=["x"])

    def test_requeue_recreates_a_deleted_queue(self, plane: ControlPlane) -> None:
        plane.create_queue("gone")
        task = self.running(plane, queue="gone")
        plane.delete_queue("gone")
        plane.requeue(task.id)
        assert plane.get_queue("gone").tasks == [task.id]

    # -- watchdog --------------------------------------------------------------------------
    def test_watchdog_fails_a_task_whose_worker_went_silent(
        self, plane: ControlPlane, clock: FakeClock
    ) -> None:
        plane.register_worker("w1")
        task = self.running(plane, "w1")
        clock.advance(99)
        assert check(plane, threshold_sec=100) == []
        plane.heartbeat("w1")
        clock.advance(99)
        assert check(plane, threshold_sec=100) == []  # the heartbeat kept it alive
        clock.advance(1)
        actions = check(plane, threshold_sec=100)
        assert [(a.task_id, a.worker, a.action) for a in actions] == [(task.id, "w1", "failed")]
        failed = plane.get_task(task.id)
        assert failed.status == TaskStatus.FAILED
        assert "non-responsive" in failed.status_reason
        assert "w1" in failed.status_reason
        assert [w.id for w in plane.list_workers()] == []  # the silent worker is forgotten

    def test_watchdog_counts_task_output_as_life(self, plane: ControlPlane, clock: FakeClock) -> None:
        task = self.running(plane, "w1")  # never registered: only its output shows it lives
        clock.advance(90)
        plane.append_logs(task.id, ["tick"])
        clock.advance(90)
        assert check(plane, threshold_sec=100) == []
        clock.advance(10)
        assert [a.task_id for a in check(plane, threshold_sec=100)] == [task.id]

    def test_watchdog_can_requeue(self, plane: ControlPlane, clock: FakeClock) -> None:
        task = self.running(plane, "w1")
        waiting = self.queued(plane)[0]
        clock.advance(7200)
        watchdog = Watchdog(plane, WatchdogSettings(threshold_sec=7200, watch_interval_sec=900, requeue=True))
        assert [a.action for a in watchdog.maybe_check()] == ["requeued"]
        requeued = plane.get_task(task.id)
        assert (requeued.status, requeued.worker) == (TaskStatus.QUEUED, None)
        assert "non-responsive" in requeued.status_reason
        assert plane.get_queue(DEFAULT_QUEUE).tasks == [task.id, waiting.id]
        again = plane.pop([DEFAULT_QUEUE], "w2")
        assert again is not None
        assert again.id == task.id
        clock.advance(8000)
        assert watchdog.maybe_check(clock.now - 8000 + 899) == []  # not due before the interval
        assert [a.task_id for a in watchdog.maybe_check()] == [task.id]

    def test_watchdog_leaves_live_and_finished_tasks_alone(
        self, plane: ControlPlane, clock: FakeClock
    ) -> None:
        done = self.running(plane, "w1")
        plane.set_status(done.id, TaskStatus.COMPLETED, exit_code=0)
        waiting = self.queued(plane)[0]
        clock.advance(10**6)
        assert check(plane, threshold_sec=100) == []
        assert plane.get_task(done.id).status == TaskStatus.COMPLETED
        assert plane.get_task(waiting.id).status == TaskStatus.QUEUED

    def test_restarted_worker_recovers_its_tasks(self, plane: ControlPlane) -> None:
        mine = self.running(plane, "host:7")
        theirs = self.running(plane, "host:8")
        actions = recover_worker_tasks(plane, "host:7")
        assert [(a.task_id, a.action) for a in actions] == [(mine.id, "failed")]
        assert "restarted" in plane.get_task(mine.id).status_reason
        assert plane.get_task(theirs.id).status == TaskStatus.IN_PROGRESS
        other = self.running(plane, "host:9")
        assert [a.action for a in recover_worker_tasks(plane, "host:9", requeue=True)] == ["requeued"]
        assert plane.get_task(other.id).status == TaskStatus.QUEUED


__all__ = ["ControlPlaneContract", "FakeClock"]
