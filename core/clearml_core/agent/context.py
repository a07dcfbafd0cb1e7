"""What the stages of one task share: the :class:`TaskContext`, the outcomes, the stage protocol.

A stage is anything with a ``name`` and ``run(ctx)`` (optionally ``cleanup(ctx)``, called in
reverse order for every stage that started, whatever happened). Stages talk through the context:
``ctx.code_dir``, ``ctx.python``, ``ctx.env``, ``ctx.argv`` and the free-form ``ctx.state``.
A stage fails the task by raising :class:`TaskFailed` (its message becomes the record's reason);
an abort or a daemon shutting down surfaces as :class:`TaskAborted` from :meth:`TaskContext.check`.

This module is what every stage imports (:mod:`clearml_core.agent.stages`) and what
:mod:`clearml_core.agent.pipeline` runs them with; it needs only the execution-environment protocol
below it, so the stages can live beside the pipeline without importing it.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from clearml_core.runners.base import (
    DEFAULT_ABORT_GRACE_SEC,
    ExecutionEnvironment,
    ExecutionError,
    LaunchSpec,
    LogSink,
)

if TYPE_CHECKING:
    from clearml_core.config import Config
    from clearml_core.controlplane import ControlPlane, Task


# -- outcomes ---------------------------------------------------------------------------------


class TaskFailed(Exception):
    """A stage cannot go on: the task fails with this message as its reason."""


class TaskAborted(Exception):
    """The task was asked to stop (``task abort``, ``--stop --force``); it ends ``stopped``."""


@dataclass
class RunResult:
    """What the ``run`` stage observed."""

    exit_code: int | None = None
    aborted: bool = False
    timed_out: bool = False
    reason: str = ""
    duration: float = 0.0


# -- context ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunOptions:
    """How the agent was asked to run its tasks: the command-line flags that reach the stages."""

    optimization: int = 0
    """``-O`` given N times: the task's Python runs with ``-O`` (``-OO`` for 2)."""
    standalone: bool = False
    """``--standalone-mode``: nothing is installed; the task runs with the interpreter as it is."""
    environ: Mapping[str, str] = field(default_factory=dict)
    """Variables the agent adds to every task (``CLEARML_LOG_LEVEL``, ``CLEARML_WORKER_TAGS``)."""
    launch_extra: Mapping[str, Any] = field(default_factory=dict)
    """Passed to the execution environment in :attr:`LaunchSpec.extra` (``--podman``, …)."""

    @property
    def python_options(self) -> list[str]:
        return [f"-{'O' * self.optimization}"] if self.optimization > 0 else []


class StopSignal:
    """Why a running task should stop, set from another thread (abort watcher, the daemon)."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.reason = ""

    def set(self, reason: str) -> None:
        if not self._event.is_set():
            self.reason = reason
            self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()

    def wait(self, timeout: float) -> bool:
        return self._event.wait(timeout)


@dataclass
class TaskContext:
    """Everything the stages of one task share."""

    task: Task
    config: Config
    worker_id: str
    environment: ExecutionEnvironment
    sink: LogSink
    work_dir: Path
    plane: ControlPlane | None = None
    gpus: list[str] | None = None
    """Devices the task may use (None: no pinning, []: none at all)."""
    stop: StopSignal = field(default_factory=StopSignal)
    code_dir: Path | None = None
    output_dir: Path | None = None
    python: str = ""
    env: dict[str, str] = field(default_factory=dict)
    argv: list[str] | None = None
    result: RunResult = field(default_factory=RunResult)
    state: dict[str, Any] = field(default_factory=dict)
    """Free-form data stages hand each other (repository info, environment cache key, …)."""
    abort_grace: float = DEFAULT_ABORT_GRACE_SEC
    default_image: str | None = None
    """The daemon's container image (``--docker IMAGE``) for tasks that name none."""
    default_image_args: Sequence[str] = ()
    options: RunOptions = field(default_factory=RunOptions)
    clock: Callable[[], float] = time.monotonic

    def log(self, message: str) -> None:
        """A line from the agent itself into the task's log."""
        self.sink.write("agent", f"clearml-core: {message}")

    def check(self) -> None:
        """Raise :class:`TaskAborted` when the task should stop; long stages call this often."""
        if self.stop.is_set():
            raise TaskAborted(self.stop.reason or "aborted")

    @property
    def cwd(self) -> Path:
        """Where the entry point runs: the script's working dir inside the code."""
        base = self.code_dir or self.work_dir
        working = self.task.script.working_dir or "."
        return (base / working).resolve()

    def run_command(
        self,
        argv: Sequence[str],
        *,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
        what: str = "",
    ) -> int:
        """Run a helper command on this machine (a ``git``, a ``pip install``), its output going
        into the task's log, stopping it when the task is aborted. Returns its exit code."""
        from clearml_core.runners.local import LocalProcessEnvironment

        self.check()
        local = LocalProcessEnvironment(self.config)
        spec = LaunchSpec(argv=list(argv), cwd=cwd or self.work_dir, env=dict(env or os.environ))
        try:
            execution = local.start(spec, self.sink)
        except ExecutionError as error:
            raise TaskFailed(f"{what or argv[0]}: {error}") from None
        while True:
            code = execution.wait(0.1)
            if code is not None:
                return code
            if self.stop.is_set():
                execution.abort(self.abort_grace)
                raise TaskAborted(self.stop.reason or "aborted")


# -- stages -----------------------------------------------------------------------------------


@runtime_checkable
class Stage(Protocol):
    """One step of running a task."""

    name: str

    def run(self, ctx: TaskContext) -> None: ...


__all__ = [
    "RunOptions",
    "RunResult",
    "Stage",
    "StopSignal",
    "TaskAborted",
    "TaskContext",
    "TaskFailed",
]
