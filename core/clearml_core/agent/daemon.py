"""The agent daemon: pull tasks from queues and run them, as ``clearml-agent daemon`` does.

One loop in the main thread; each task runs in its own thread (which starts and waits for the
task's process), so the loop keeps heartbeating, watching the queues and the watchdog while tasks
run. Between polls the loop waits in the store's ``wait_for_tasks`` (a blocking wait on Redis, a
file watch on SQLite), so a task is taken the moment it is enqueued; per poll it costs one cheap
read of the control plane (``pop`` looks before it locks). Heartbeats with machine stats, a fresh
look at queue tags and the worker's runtime properties, and the watchdog run on their own slower
clocks. An idle daemon stays far below 1% of a core.

How many tasks run at once: one; up to N with ``--services-mode N``; with ``--dynamic-gpus``, as
many as the free GPUs allow (see :mod:`clearml_core.agent.gpus`).

Stopping: SIGTERM (and ``agent daemon --stop``) drains: the running tasks finish, no new ones are
taken, then the daemon unregisters and exits. SIGUSR1 (``--stop --force``) or a second SIGINT
aborts the running tasks (they end ``stopped``) and exits at once. How ``--stop`` and
``--status`` find the daemons is :mod:`clearml_core.agent.run_records`; a task's run is
:mod:`clearml_core.agent.execute`, the heartbeat thread of ``agent execute``
:mod:`clearml_core.agent.heartbeat`.

This module is longer than most (about 650 lines) because :class:`Daemon` is one state machine:
the running tasks, draining, the GPU slots, the worker's record and its clocks change together
under one lock, and splitting its methods across modules would spread that state, not reduce it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from clearml_core import __version__
from clearml_core.agent.context import RunOptions, Stage, StopSignal
from clearml_core.agent.execute import Outcome, execute_task
from clearml_core.agent.gpus import GpuAllocator, GpuSpecError, QueueRequest
from clearml_core.agent.heartbeat import report_period
from clearml_core.agent.identity import gpu_suffix, worker_id, worker_name
from clearml_core.agent.run_records import is_agent_process, write_run_record
from clearml_core.agent.schedule import WorkSchedule, may_pull
from clearml_core.controlplane import control_plane_origin
from clearml_core.controlplane.protocol import QueueNotFoundError, WorkerNotFoundError
from clearml_core.controlplane.records import Worker
from clearml_core.controlplane.watchdog import Watchdog, WatchdogSettings, recover_worker_tasks
from clearml_core.errors import UserError
from clearml_core.runners.base import DEFAULT_ABORT_GRACE_SEC, load_environment

if TYPE_CHECKING:
    from clearml_core.agent.stats import MachineStats
    from clearml_core.config import Config
    from clearml_core.controlplane import ControlPlane, Task

log = logging.getLogger("clearml_core.agent")

DEFAULT_POLLING_INTERVAL = 5.0
FORCE_STOP_REASON = "aborted: the agent daemon was stopped with --stop --force"


@dataclass
class DaemonOptions:
    """What ``clearml-core agent daemon`` was asked to do (the CLI flags, resolved)."""

    queues: list[str]
    queue_requests: list[QueueRequest] | None = None
    """With --dynamic-gpus: each queue's GPU request, in priority order."""
    order_fairness: bool = False
    polling_interval: float | None = None
    create_queue: bool = False
    foreground: bool = False
    stop_when_empty: bool = False
    gpus: list[str] | None = None
    """Devices to pin tasks to (None: no pinning; []: --cpu-only)."""
    dynamic_gpus: bool = False
    uptime: list[str] = field(default_factory=list)
    downtime: list[str] = field(default_factory=list)
    services_mode: int | None = None
    """None: one task at a time; N > 0: up to N at once; 0: no limit."""
    execution_environment: str = "venv"
    docker_image: str | None = None
    docker_args: list[str] = field(default_factory=list)
    report_period: float | None = None
    abort_grace: float | None = None
    detached_log: str | None = None
    run_options: RunOptions = field(default_factory=RunOptions)
    """-O, --standalone-mode and the variables the tasks get (see :class:`RunOptions`)."""
    worker_tags: list[str] = field(default_factory=list)
    """--child-report-tags: reported with the worker (``info["tags"]``)."""
    use_owner_token: bool = False
    """Accepted from clearml-agent; the daemon hands no task its owner's credentials, so it changes nothing."""


def setting_float(config: Config, key: str, default: float) -> float:
    value = config.get_float(key, default)
    return default if value is None else value


class _Running:
    """A task the daemon is running, in its own thread."""

    def __init__(self, task: Task, stop: StopSignal, gpus: list[str] | None) -> None:
        self.task = task
        self.stop = stop
        self.gpus = gpus
        self.thread: threading.Thread | None = None
        self.outcome: Outcome | None = None


class Daemon:
    """The daemon loop. Build it, then :meth:`run` (from the main thread to get signal handling)."""

    def __init__(
        self,
        options: DaemonOptions,
        *,
        config: Config | None = None,
        plane: ControlPlane | None = None,
        clock: Callable[[], float] = time.time,
        now: Callable[[], datetime] = datetime.now,
        devices: Sequence[str] | None = None,
        stats: MachineStats | None = None,
        stages: Sequence[Stage] | None = None,
    ) -> None:
        from clearml_core.settings import get_config

        self.options = options
        self.config = config or get_config()
        self._plane = plane
        self.clock = clock
        self.now = now
        self._stats = stats
        self._devices = devices
        self._stages = list(stages) if stages is not None else None
        self._exit_code = 0
        self._running: dict[str, _Running] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._draining = False
        self._force = False
        self._fair_offset = 0
        self._queue_tags: dict[str, list[str]] = {}
        self._worker: Worker | None = None
        self._last_report = 0.0
        self._registered = False
        self._run_record: Path | None = None
        self.worker_id = ""
        self.completed: list[Outcome] = []
        self._setup_settings()

    # -- settings ----------------------------------------------------------------------------
    def _setup_settings(self) -> None:
        options, config = self.options, self.config
        if not options.queues:
            raise UserError("give the daemon at least one queue: clearml-core agent daemon --queue NAME")
        self.polling_interval = (
            options.polling_interval
            if options.polling_interval is not None
            else setting_float(config, "agent.polling_interval_sec", DEFAULT_POLLING_INTERVAL)
        )
        if self.polling_interval <= 0:
            raise UserError(f"the polling interval must be positive, not {self.polling_interval:g}")
        self.report_period = (
            options.report_period if options.report_period is not None else report_period(config)
        )
        self.abort_grace = (
            options.abort_grace
            if options.abort_grace is not None
            else setting_float(config, "agent.abort_grace_sec", DEFAULT_ABORT_GRACE_SEC)
        )
        uptime = options.uptime or _config_entries(config.get("agent.uptime"))
        downtime = options.downtime or _config_entries(config.get("agent.downtime"))
        if options.uptime and not options.downtime:
            downtime = []  # the command line replaces the configuration, as clearml-agent does
        if options.downtime and not options.uptime:
            uptime = []
        self.schedule = WorkSchedule.parse(uptime, downtime)
        gpus = options.gpus
        if gpus is None and config.get_bool("agent.cpu_only", False):
            gpus = []
        self.gpus = gpus
        self.allocator: GpuAllocator | None = None
        if options.dynamic_gpus:
            devices = list(self._devices) if self._devices is not None else gpus
            if devices is None:
                from clearml_core.agent.gpus import detect_gpus

                devices = detect_gpus()
            if not devices:
                raise GpuSpecError(
                    "--dynamic-gpus found no GPU to hand out; name them with --gpus 0-3 "
                    "(nvidia-ml-py reads them when installed)"
                )
            requests = options.queue_requests or []
            for request in requests:
                if request.minimum > len(devices):
                    raise GpuSpecError(
                        f"queue {request.queue} asks for {request.minimum} GPUs but the daemon has "
                        f"{len(devices)} ({','.join(devices)})"
                    )
            self.allocator = GpuAllocator(devices)
            self.requests = {request.queue: request for request in requests}
        else:
            self.requests = {}
        self.watchdog_settings = WatchdogSettings.from_config(config)

    @property
    def plane(self) -> ControlPlane:
        if self._plane is None:
            from clearml_core.controlplane import open_control_plane

            self._plane = open_control_plane(config=self.config)
        return self._plane

    @property
    def max_concurrent(self) -> int | None:
        """None: no fixed limit (dynamic GPUs, services mode 0)."""
        if self.allocator is not None:
            return None
        if self.options.services_mode is not None:
            return self.options.services_mode or None
        return 1

    # -- lifecycle ---------------------------------------------------------------------------
    def request_stop(self, *, force: bool = False) -> None:
        """Drain (finish the running tasks, take no new ones); ``force`` aborts them instead."""
        self._draining = True
        if force:
            self._force = True
            with self._lock:
                for running in self._running.values():
                    running.stop.set(FORCE_STOP_REASON)
        self._wake.set()

    def _install_signals(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return

        def drain(signum: int, _frame: object) -> None:
            if signum == signal.SIGINT and self._draining:
                log.warning("second interrupt: aborting the running tasks")
                self.request_stop(force=True)
                return
            log.info(
                "%s: finishing the running task(s), taking no new ones (--stop --force aborts them)",
                signal.Signals(signum).name,
            )
            self.request_stop()

        def force(_signum: int, _frame: object) -> None:
            log.info("forced stop: aborting the running task(s)")
            self.request_stop(force=True)

        signal.signal(signal.SIGTERM, drain)
        signal.signal(signal.SIGINT, drain)
        signal.signal(signal.SIGUSR1, force)

    def _start(self) -> None:
        from clearml_core.agent.stats import MachineStats

        options = self.options
        self.worker_id = worker_id(self.config, suffix=gpu_suffix(self.gpus, dynamic=options.dynamic_gpus))
        environment = load_environment(options.execution_environment, self.config)  # missing: say so now
        for line in environment.clean_up_orphans(options.run_options.launch_extra):
            log.warning("%s", line)
        plane = self.plane
        self._check_queues()
        self._check_duplicate()
        for action in recover_worker_tasks(plane, self.worker_id, requeue=self.watchdog_settings.requeue):
            log.warning("task %s of a previous run of %s: %s", action.task_id, self.worker_id, action.action)
        self._recover_dead_local_workers()
        info = {
            "hostname": socket.gethostname(),
            "pid": os.getpid(),
            "version": __version__,
            "gpus": self.gpus if self.allocator is None else self.allocator.devices,
            "dynamic_gpus": [str(r) for r in self.requests.values()] if self.allocator else None,
            "schedule": self.schedule.describe(),
            "services_mode": options.services_mode,
            "execution_environment": options.execution_environment,
            "started": self.clock(),
        }
        if options.worker_tags:
            info["tags"] = list(options.worker_tags)
        self._worker = plane.register_worker(
            self.worker_id, name=worker_name(self.config), queues=options.queues, info=info
        )
        self._registered = True
        self._stats = self._stats or MachineStats(gpus=self.gpus)
        self.watchdog = Watchdog(plane, self.watchdog_settings)
        self._refresh_queue_tags()
        self._last_report = self.clock()
        self._write_run_record()
        if options.use_owner_token:
            log.warning(
                "--use-owner-token has no effect on the control plane %s: clearml-core's daemon runs every "
                "task with its own identity (no task is handed its owner's credentials)",
                plane.url,
            )
        log.info(
            "worker %s listening to %s (%s)%s; control plane %s (from %s)",
            self.worker_id,
            ", ".join(str(self.requests.get(q, q)) for q in options.queues),
            self.schedule.describe(),
            f", GPUs {','.join(self.gpus)}" if self.gpus else (", CPU only" if self.gpus == [] else ""),
            plane.url,
            control_plane_origin(self.config, plane.url),
        )

    def _check_queues(self) -> None:
        for name in self.options.queues:
            try:
                self.plane.get_queue(name)
            except QueueNotFoundError:
                if not self.options.create_queue:
                    raise
                self.plane.create_queue(name, exist_ok=True)
                log.info("created queue %s", name)

    def _check_duplicate(self) -> None:
        try:
            existing = self.plane.get_worker(self.worker_id)
        except WorkerNotFoundError:
            return
        pid = existing.info.get("pid")
        if existing.info.get("hostname") != socket.gethostname() or not isinstance(pid, int):
            return
        if pid != os.getpid() and is_agent_process(pid):
            raise UserError(
                f"a daemon with worker id {self.worker_id} already runs on this machine (pid {pid}); stop it "
                "(clearml-core agent daemon --stop) or give this one another agent.worker_id"
            )

    def _recover_dead_local_workers(self) -> None:
        """Workers of this host whose process is gone (killed): their tasks are handled now,
        not after the watchdog threshold."""
        host = socket.gethostname()
        for worker in self.plane.list_workers():
            pid = worker.info.get("pid")
            if worker.id == self.worker_id or worker.info.get("hostname") != host or not isinstance(pid, int):
                continue
            if is_agent_process(pid):
                continue
            reason = f"the worker {worker.id} died while the task was running (its process {pid} is gone)"
            for action in recover_worker_tasks(
                self.plane, worker.id, requeue=self.watchdog_settings.requeue, reason=reason
            ):
                log.warning("task %s of dead worker %s: %s", action.task_id, worker.id, action.action)
            self.plane.unregister_worker(worker.id)

    def _write_run_record(self) -> None:
        self._run_record = write_run_record(
            worker_id=self.worker_id,
            queues=self.options.queues,
            log=self.options.detached_log,
            control_plane=self.plane.url,
            started=self.clock(),
        )

    def _shutdown(self) -> None:
        if self._registered:
            with contextlib.suppress(Exception):
                self.plane.unregister_worker(self.worker_id)
            self._registered = False
        if self._stats is not None:
            self._stats.close()
        if self._run_record is not None:
            with contextlib.suppress(OSError):
                self._run_record.unlink()
            self._run_record = None

    # -- the loop ----------------------------------------------------------------------------
    def start(self) -> None:
        """Check the queues, recover what a dead incarnation left, register the worker."""
        self._start()

    def poll_once(self) -> int:
        """One turn of the loop: heartbeat and watchdog when due, then take tasks while there is
        room; returns how many tasks were started."""
        self._report_if_due()
        self._watchdog()
        if self._draining:
            return 0
        return self._take_tasks()

    def run(self) -> int:
        """Serve the queues until stopped; returns the process exit code."""
        self._install_signals()
        try:
            self.start()
            while True:
                if self._force or (self._draining and not self._running):
                    break
                started = self.poll_once()
                idle = not started and not self._running and not self._draining
                if idle and self.options.stop_when_empty and self._queues_empty():
                    log.info("the queues are empty: stopping (--stop-when-empty)")
                    break
                self._wait()
            self.join()
        finally:
            self.close()
        return self._exit_code

    def close(self) -> None:
        """Unregister the worker and remove the run record (the tasks must be over)."""
        self._shutdown()

    @property
    def running(self) -> list[str]:
        """Ids of the tasks running now."""
        with self._lock:
            return list(self._running)

    def _wait(self) -> None:
        """Sleep until the next poll: the polling interval, or sooner when a task ends, a signal
        comes, or (with room for a task) one of the queues gets one: the store's
        :meth:`~clearml_core.controlplane.ControlPlane.wait_for_tasks` blocks on Redis and
        watches the file of SQLite, so a new task is picked up at once and waiting costs nothing."""
        until_report = self._last_report + self.report_period - self.clock()
        timeout = max(0.0, min(self.polling_interval, until_report))
        queues = self.eligible_queues() if not self._draining and self._has_capacity() else []
        if queues and timeout > 0:
            try:
                self.plane.wait_for_tasks(queues, timeout, cancel=self._wake, poll=self.polling_interval)
            except Exception as error:
                log.warning("cannot wait for tasks (will retry): %s", error)
                self._wake.wait(timeout)
        else:
            self._wake.wait(timeout)
        self._wake.clear()

    def _report_if_due(self) -> None:
        if self.clock() - self._last_report >= self.report_period:
            self.report()

    def report(self) -> None:
        """Heartbeat now, with machine stats; re-read the queues' tags and the runtime properties."""
        self._last_report = self.clock()
        try:
            stats = self._stats.snapshot() if self._stats is not None else {}
            if self.allocator is not None:
                stats["gpu_allocation"] = self.allocator.usage()
            self._worker = self.plane.heartbeat(
                self.worker_id, queues=self.options.queues, machine_stats=stats
            )
            self._refresh_queue_tags()
        except Exception as error:
            log.warning("heartbeat failed (will retry): %s", error)

    def _refresh_queue_tags(self) -> None:
        try:
            queues = {queue.name: list(queue.tags) for queue in self.plane.list_queues()}
        except Exception as error:
            log.warning("cannot read the queues' tags (will retry): %s", error)
            return
        self._queue_tags = {name: queues.get(name, []) for name in self.options.queues}

    def _watchdog(self) -> None:
        try:
            for action in self.watchdog.maybe_check():
                log.warning("watchdog: task %s %s (%s)", action.task_id, action.action, action.reason)
        except Exception as error:
            log.warning("watchdog check failed: %s", error)

    def _reload_config(self) -> None:
        if not self.config.get_bool("agent.reload_config", False):
            return
        from clearml_core.settings import get_config, reset_config

        try:
            reset_config()
            self.config = get_config()
            log.info("configuration reloaded (agent.reload_config)")
        except UserError as error:
            log.error("keeping the previous configuration: %s", error)

    def eligible_queues(self) -> list[str]:
        """The queues to pull from now, in the order to try them."""
        queues = list(self.options.queues)
        if self.options.order_fairness and queues:
            offset = self._fair_offset % len(queues)
            queues = queues[offset:] + queues[:offset]
        moment = self.now()
        properties = self._worker.runtime_properties if self._worker is not None else None
        props = {key: prop.to_dict() for key, prop in (properties or {}).items()}
        allowed = []
        for name in queues:
            decision = may_pull(
                self.schedule,
                moment,
                queue_tags=self._queue_tags.get(name, ()),
                worker_properties=props,
                now=self.clock(),
            )
            if not decision.pull:
                continue
            if self.allocator is not None:
                request = self.requests.get(name)
                if request is None or not self.allocator.can_serve(request):
                    continue
            allowed.append(name)
        return allowed

    def _has_capacity(self) -> bool:
        limit = self.max_concurrent
        with self._lock:
            return limit is None or len(self._running) < limit

    def _take_tasks(self) -> int:
        """Pop and start tasks while there is room; returns how many were started."""
        started = 0
        while not self._draining and self._has_capacity():
            queues = self.eligible_queues()
            if not queues:
                break
            try:
                task = self.plane.pop(queues, self.worker_id)
            except Exception as error:
                log.warning("cannot pop a task (will retry): %s", error)
                break
            if task is None:
                break
            if self.options.order_fairness and task.queue in self.options.queues:
                self._fair_offset = self.options.queues.index(task.queue) + 1
            self._launch(task)
            started += 1
        return started

    def _launch(self, task: Task) -> None:
        gpus = self.gpus
        if self.allocator is not None:
            request = self.requests.get(task.queue or "")
            # only this thread allocates, and it popped from a queue it can serve, so this holds
            gpus = self.allocator.allocate(task.id, request) if request is not None else None
            if gpus is None:
                log.warning(
                    "task %s: no GPU could be allocated for queue %s; it runs without", task.id, task.queue
                )
                gpus = []
        running = _Running(task, StopSignal(), gpus)
        thread = threading.Thread(target=self._run_task, args=(running,), name=f"task-{task.id[:8]}")
        running.thread = thread
        with self._lock:
            self._running[task.id] = running
        log.info(
            "running task %s (%s) from queue %s%s",
            task.id,
            task.name,
            task.queue,
            f" on GPUs {','.join(gpus)}" if gpus else "",
        )
        thread.start()

    def _run_task(self, running: _Running) -> None:
        task = running.task
        try:
            running.outcome = execute_task(
                self.plane,
                task,
                config=self.config,
                worker_id=self.worker_id,
                gpus=running.gpus,
                environment=self.options.execution_environment,
                console=self.options.foreground,
                stop=running.stop,
                abort_grace=self.abort_grace,
                image=self.options.docker_image,
                image_args=self.options.docker_args,
                stages=self._stages,
                options=self.options.run_options,
            )
            outcome = running.outcome
            log.info(
                "task %s %s%s", task.id, outcome.status.value, f": {outcome.reason}" if outcome.reason else ""
            )
            if outcome.internal_error:
                self._crash_if_asked(task.id)
        except Exception:
            log.exception("task %s: the agent failed to run it", task.id)
            self._crash_if_asked(task.id)
        finally:
            if not self._draining:
                self._reload_config()  # before the slot frees up: the next task gets the new settings
            if self.allocator is not None:
                self.allocator.release(task.id)
            with self._lock:
                self._running.pop(task.id, None)
                if running.outcome is not None:
                    self.completed.append(running.outcome)
            self._wake.set()

    def _crash_if_asked(self, task_id: str) -> None:
        """``agent.crash_on_exception``: an internal error stops the daemon (exit code 1) once
        the other running tasks end, instead of being logged and left behind."""
        if not self.config.get_bool("agent.crash_on_exception", False):
            return
        log.error(
            "stopping after the internal error in task %s (agent.crash_on_exception); "
            "the running tasks finish first",
            task_id,
        )
        self._exit_code = 1
        self._draining = True
        self._wake.set()

    def join(self) -> None:
        """Wait for every running task to end."""
        while True:
            with self._lock:
                threads = [r.thread for r in self._running.values() if r.thread is not None]
            if not threads:
                return
            for thread in threads:
                thread.join()

    def _queues_empty(self) -> bool:
        try:
            return all(not self.plane.get_queue(name).tasks for name in self.options.queues)
        except QueueNotFoundError:
            return True
        except Exception as error:  # the store busy for a moment: not empty as far as we know
            log.warning("cannot look at the queues (will retry): %s", error)
            return False


def _config_entries(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value] if value.strip() else []
    return [str(item) for item in value]
