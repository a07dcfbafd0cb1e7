"""Execute one task that is already ``in_progress`` for this worker, and record what happened.

Used by the daemon for every task it pops and by ``clearml-core agent execute``. Around the
:mod:`~clearml_core.agent.pipeline` it adds what a run needs from the control plane:

* the task log: every line goes to ``~/.clearml-core/tasks/<id>/task.log`` at once and to the
  control plane in batches (a line shows in ``task logs --follow`` within a second), to the
  console in the daemon's ``--foreground`` mode, and to ``agent execute --log-file``;
* an abort watcher: a thread asks the plane every quarter second whether someone aborted the
  task (one indexed read), so the process tree is stopped within the grace period after that;
* the outcome: exit 0 → ``completed``; an abort → ``stopped``; anything else → ``failed`` with the
  exit code or the stage's reason, and the last log lines in the record. The record is changed
  only if this worker still owns the task (the watchdog may have given it away meanwhile).
"""

from __future__ import annotations

import logging
import signal
import threading
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from clearml_core.agent.context import RunOptions, Stage, StopSignal, TaskAborted, TaskContext, TaskFailed
from clearml_core.agent.identity import state_dir
from clearml_core.agent.pipeline import Pipeline, default_stages
from clearml_core.controlplane.protocol import InvalidTransitionError, TaskNotFoundError
from clearml_core.controlplane.records import TaskStatus
from clearml_core.errors import UserError
from clearml_core.runners.base import DEFAULT_ABORT_GRACE_SEC, ExecutionEnvironment, load_environment
from clearml_core.runners.output import BatchingSink, ConsoleSink, FileSink, LogLine, TeeSink

if TYPE_CHECKING:
    from clearml_core.config import Config
    from clearml_core.controlplane import ControlPlane, Task

log = logging.getLogger(__name__)

ABORT_POLL_SEC = 0.25
LOG_BATCH_SEC = 0.3


def task_dir(task_id: str) -> Path:
    """The task's folder on this machine: its log, and while it runs its code and outputs."""
    return state_dir() / "tasks" / task_id


@dataclass(frozen=True)
class Outcome:
    """How a run ended, as recorded (or, when ``recorded`` is False, as it would have been)."""

    task_id: str
    status: TaskStatus
    reason: str
    exit_code: int | None
    recorded: bool = True
    internal_error: bool = False
    """The agent itself failed (an exception no stage turned into a reason)."""


class ControlPlaneSink(BatchingSink):
    """Batches of lines appended to the task's log in the control plane."""

    def __init__(self, plane: ControlPlane, task_id: str, *, interval: float = LOG_BATCH_SEC) -> None:
        self._plane = plane
        self._task_id = task_id
        super().__init__(self._append, interval=interval, on_error=self._warn)
        self._warned = False

    def _append(self, batch: Sequence[LogLine]) -> None:
        # one append per run of lines from the same stream; agent lines count as stdout
        group: list[str] = []
        stream = ""
        stamp = 0.0
        for line in batch:
            name = "stderr" if line.stream == "stderr" else "stdout"
            if group and name != stream:
                self._plane.append_logs(self._task_id, group, stream=stream, timestamp=stamp)
                group = []
            if not group:
                stream, stamp = name, line.time
            group.append(line.text)
        if group:
            self._plane.append_logs(self._task_id, group, stream=stream, timestamp=stamp)

    def _warn(self, error: BaseException) -> None:
        if not self._warned:
            self._warned = True
            log.warning(
                "cannot send the log of task %s to the control plane (will retry): %s", self._task_id, error
            )


class AbortWatcher(threading.Thread):
    """Polls the plane's abort flag of one task and trips the task's stop signal."""

    def __init__(self, plane: ControlPlane, task_id: str, stop: StopSignal, interval: float = ABORT_POLL_SEC):
        super().__init__(name=f"clearml-abort-{task_id[:8]}", daemon=True)
        self._plane = plane
        self._task_id = task_id
        self._stop_signal = stop
        self._interval = interval
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.wait(self._interval):
            try:
                if self._plane.abort_requested(self._task_id):
                    reason = self._plane.get_task(self._task_id).status_reason or "aborted by user"
                    self._stop_signal.set(reason)
                    return
            except TaskNotFoundError:
                self._stop_signal.set("the task was deleted while it ran")
                return
            except Exception as error:  # the plane busy for a moment: try again next time
                log.debug("abort check of task %s failed: %s", self._task_id, error)

    def finish(self) -> None:
        self._done.set()


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "the process did not report an exit code"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"the process was killed by {name}"
    return f"exit code {code}"


def execute_task(
    plane: ControlPlane,
    task: Task,
    *,
    config: Config,
    worker_id: str,
    gpus: list[str] | None = None,
    environment: ExecutionEnvironment | str = "venv",
    stages: list[Stage] | None = None,
    console: bool = False,
    stop: StopSignal | None = None,
    abort_grace: float = DEFAULT_ABORT_GRACE_SEC,
    log_interval: float = LOG_BATCH_SEC,
    image: str | None = None,
    image_args: Sequence[str] = (),
    options: RunOptions | None = None,
    log_file: Path | None = None,
) -> Outcome:
    """Run ``task`` (``in_progress`` for ``worker_id``) to its end and record the outcome;
    ``log_file`` gets a copy of its log."""
    stop = stop or StopSignal()
    work_dir = task_dir(task.id)
    work_dir.mkdir(parents=True, exist_ok=True)
    file_sink = FileSink(work_dir / "task.log")
    plane_sink = ControlPlaneSink(plane, task.id, interval=log_interval)
    copy_sink = FileSink(log_file) if log_file is not None else None
    sink = TeeSink(file_sink, plane_sink, ConsoleSink() if console else None, copy_sink)
    watcher = AbortWatcher(plane, task.id, stop)
    watcher.start()
    started = time.monotonic()
    ctx: TaskContext | None = None
    status, reason, exit_code = TaskStatus.FAILED, "", None
    internal_error = False
    runtime: dict[str, Any] = {"worker": worker_id, "log_file": str(work_dir / "task.log")}
    try:
        env = load_environment(environment, config) if isinstance(environment, str) else environment
        runtime["execution_environment"] = env.name
        if gpus is not None:
            runtime["gpus"] = list(gpus)
        pipeline = Pipeline(env.stages(stages if stages is not None else default_stages()))
        ctx = TaskContext(
            task=task,
            config=config,
            worker_id=worker_id,
            environment=env,
            sink=sink,
            work_dir=work_dir,
            plane=plane,
            gpus=gpus,
            stop=stop,
            abort_grace=abort_grace,
            default_image=image,
            default_image_args=tuple(image_args),
            options=options or RunOptions(),
        )
        ctx.log(f"task {task.id} ({task.name or 'unnamed'}) on worker {worker_id}")
        try:
            pipeline.run(ctx)
        finally:
            runtime["stages"] = [
                {"name": t.name, "seconds": round(t.seconds, 4), "outcome": t.outcome}
                for t in pipeline.timings
            ]
        result = ctx.result
        exit_code = result.exit_code
        if result.timed_out:
            reason = result.reason
        elif exit_code == 0:
            status, reason = TaskStatus.COMPLETED, ""
        else:
            reason = _describe_exit(exit_code)
    except TaskAborted as aborted:
        status, reason = TaskStatus.STOPPED, str(aborted) or "aborted"
        if ctx is not None:
            exit_code = ctx.result.exit_code
    except TaskFailed as failed:
        reason = str(failed)
        if ctx is not None:
            exit_code = ctx.result.exit_code
    except UserError as error:  # a missing plugin, a bad setting: the message says what to do
        reason = str(error)
    except Exception as error:
        reason, internal_error = f"internal error of the agent: {type(error).__name__}: {error}", True
        for line in traceback.format_exc().rstrip().splitlines():
            sink.write("agent", line)
        log.exception("task %s: the agent failed while running it", task.id)
    finally:
        watcher.finish()
    if ctx is not None:
        runtime.update({key: value for key, value in ctx.state.items() if key in ("outputs", "code")})
    runtime["duration_sec"] = round(time.monotonic() - started, 3)
    summary = f"task {status.value}" + (f": {reason}" if reason else "")
    sink.write("agent", f"clearml-core: {summary}")
    sink.close()  # flushes the last lines to the plane before the record takes its tail
    recorded = True
    try:
        plane.update_task(task.id, runtime={**(task.runtime or {}), **runtime})
        plane.set_status(task.id, status, reason=reason, exit_code=exit_code, expected_worker=worker_id)
    except (InvalidTransitionError, TaskNotFoundError) as error:
        recorded = False
        log.warning("task %s ended %s but its record was not changed: %s", task.id, status.value, error)
    return Outcome(task.id, status, reason, exit_code, recorded, internal_error)
