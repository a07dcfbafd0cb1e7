"""Running one task: an ordered list of stages sharing a :class:`TaskContext`.

The default pipeline is::

    prepare_workdir  ─▶  code  ─▶  environment  ─▶  run  ─▶  upload_outputs

* ``prepare_workdir`` makes the task's own folder (``code/``, ``output/``) and brings the code in:
  a local-folder task's folder is copied.
* ``code`` (:mod:`clearml_core.vcs.stage`) checks a git task's repository out into ``code/``
  through the VCS cache: the recorded commit or branch, submodules, the uncommitted diff.
* ``environment`` picks the interpreter: ``agent.python_binary`` or the agent's own when the task
  needs no packages, else an environment the package manager builds or the environment cache
  already holds (:mod:`clearml_core.environments`).
* ``run`` starts the entry point through the execution environment (``venv`` locally, ``docker``)
  and waits, watching for abort and timeout.
* ``upload_outputs`` sends what the task wrote to ``$CLEARML_OUTPUT_DIR`` to the task's output URI
  (or ``sdk.development.default_output_uri``) through the storage layer.

A stage is anything with a ``name`` and ``run(ctx)`` (optionally ``cleanup(ctx)``, called in
reverse order for every stage that started, whatever happened). Stages talk through the context:
``ctx.code_dir``, ``ctx.python``, ``ctx.env``, ``ctx.argv`` and the free-form ``ctx.state``.
A stage fails the task by raising :class:`TaskFailed` (its message becomes the record's reason);
an abort or a daemon shutting down surfaces as :class:`TaskAborted` from :meth:`TaskContext.check`.
Other exceptions are bugs: the task fails with the exception named and its traceback in the log.

Extending: :class:`Pipeline` has ``replace`` / ``insert_before`` / ``insert_after`` by stage name,
and an execution environment may reshape the list (:meth:`ExecutionEnvironment.stages`).
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
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

OUTPUT_DIR_VARIABLE = "CLEARML_OUTPUT_DIR"
TASK_ID_VARIABLE = "CLEARML_TASK_ID"
WORKER_ID_VARIABLE = "CLEARML_WORKER_ID"

COPY_IGNORE = (".git", ".venv", "__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache")
"""Folders a local-folder task does not carry into its working dir."""


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


class PrepareWorkdir:
    """The task's own folder: ``code/`` with a local-folder task's files, and ``output/``."""

    name = "prepare_workdir"

    def run(self, ctx: TaskContext) -> None:
        ctx.work_dir.mkdir(parents=True, exist_ok=True)
        for name in ("code", "output", "venv"):  # what an earlier run of the same task left
            if (ctx.work_dir / name).exists():
                shutil.rmtree(ctx.work_dir / name, ignore_errors=True)
        ctx.output_dir = ctx.work_dir / "output"
        ctx.output_dir.mkdir()
        script = ctx.task.script
        source = script.source
        if source == "folder":
            folder = Path(script.folder).expanduser()
            if not folder.is_dir():
                raise TaskFailed(
                    f"the task's folder {folder} does not exist on this machine ({ctx.worker_id}); "
                    "a local-folder task runs only where its folder is"
                )
            ctx.code_dir = ctx.work_dir / "code"
            try:
                shutil.copytree(
                    folder, ctx.code_dir, ignore=shutil.ignore_patterns(*COPY_IGNORE), symlinks=True
                )
            except (OSError, shutil.Error) as error:
                raise TaskFailed(f"cannot copy the task's folder {folder}: {error}") from None
        elif source == "git":
            pass  # the ``code`` stage checks the repository out into code/
        else:
            ctx.code_dir = ctx.work_dir / "code"
            ctx.code_dir.mkdir()

    def cleanup(self, ctx: TaskContext) -> None:
        if ctx.config.get_bool("agent.keep_task_workdir", False):
            return
        for name in ("code", "venv"):
            shutil.rmtree(ctx.work_dir / name, ignore_errors=True)


class PythonEnvironment:
    """The interpreter of the task: the agent's own when the task needs no packages, else an
    environment from the package manager (``agent.package_manager.type``) through the environment
    cache; see :mod:`clearml_core.environments.stage`."""

    name = "environment"

    def run(self, ctx: TaskContext) -> None:
        from clearml_core.environments.stage import run_environment_stage

        run_environment_stage(ctx)

    def cleanup(self, ctx: TaskContext) -> None:
        from clearml_core.environments.stage import release_environment

        release_environment(ctx)


def entry_point_argv(
    python: str,
    entry_point: str,
    args: Sequence[str],
    cwd: Path,
    python_options: Sequence[str] = (),
) -> list[str]:
    """The command line of an entry point: ``train.py`` and ``-m pkg.mod`` run with ``python``
    (and ``python_options``, such as ``-O``), ``*.sh`` with bash, an executable file directly."""
    entry = entry_point.strip()
    interpreter = [python, *python_options]
    if not entry:
        raise TaskFailed("the task has no entry point (set its script, e.g. task create --script train.py)")
    if entry.startswith("-m ") or entry.startswith("-m\t"):
        return [*interpreter, "-m", entry[2:].strip(), *args]
    path = Path(entry).expanduser()
    target = path if path.is_absolute() else cwd / path
    if not target.exists():
        raise TaskFailed(f"the entry point {entry} does not exist in {cwd}")
    if target.suffix == ".py" or target.suffix == "":
        if target.suffix == "" and os.access(target, os.X_OK) and _has_shebang(target):
            return [str(target), *args]
        return [*interpreter, str(target), *args]
    if target.suffix == ".sh":
        return ["bash", str(target), *args]
    if os.access(target, os.X_OK):
        return [str(target), *args]
    return [*interpreter, str(target), *args]


def _has_shebang(path: Path) -> bool:
    try:
        with open(path, "rb") as handle:
            return handle.read(2) == b"#!"
    except OSError:
        return False


def task_environment(ctx: TaskContext) -> dict[str, str]:
    """The process environment: the agent's own, clearml.conf's ``environment`` section
    (``agent.apply_environment``), the task's variables (``agent.enable_task_env``), then the
    agent's variables, which the task cannot override."""
    from clearml_core.agent.gpus import gpu_environment

    env = dict(os.environ)
    if ctx.config.get_bool("agent.apply_environment", True):
        for key, value in ctx.config.get_dict("environment").items():
            if value is not None:
                env[str(key)] = str(value)
    task_env = ctx.task.parameters.env
    if task_env:
        if ctx.config.get_bool("agent.enable_task_env", False):
            env.update({str(k): str(v) for k, v in task_env.items()})
        else:
            ctx.log(
                f"the task sets {', '.join(sorted(task_env))}; not applied because agent.enable_task_env "
                "is false (set it to true in clearml.conf to apply a task's environment)"
            )
    env.update(ctx.options.environ)
    env.update(ctx.env)
    env.update(gpu_environment(ctx.gpus))
    env["PYTHONUNBUFFERED"] = "1"
    env[TASK_ID_VARIABLE] = ctx.task.id
    env[WORKER_ID_VARIABLE] = ctx.worker_id
    if ctx.output_dir is not None:
        env[OUTPUT_DIR_VARIABLE] = str(ctx.output_dir)
    return env


class RunEntryPoint:
    """Start the entry point through the execution environment; wait, honouring abort and timeout."""

    name = "run"
    poll_interval = 0.05

    def run(self, ctx: TaskContext) -> None:
        ctx.check()
        task = ctx.task
        if task.script.source == "git" and ctx.code_dir is None:
            raise TaskFailed(
                f"the task's code is in the git repository {task.script.repository}, and this agent's "
                "pipeline has no stage that checks repositories out (the `code` stage)"
            )
        cwd = ctx.cwd
        if not cwd.is_dir():
            raise TaskFailed(f"the task's working dir {task.script.working_dir!r} does not exist in its code")
        argv = ctx.argv or entry_point_argv(
            ctx.python or sys.executable,
            task.script.entry_point,
            task.parameters.argv,
            cwd,
            ctx.options.python_options,
        )
        spec = LaunchSpec(
            argv=argv,
            cwd=cwd,
            env=task_environment(ctx),
            task_id=task.id,
            image=task.container.image or ctx.default_image or None,
            image_args=tuple(task.container.arguments or ctx.default_image_args),
            extra=dict(ctx.options.launch_extra),
        )
        try:
            spec = ctx.environment.prepare(spec, ctx.sink)
            started = ctx.clock()
            execution = ctx.environment.start(spec, ctx.sink)
        except ExecutionError as error:
            raise TaskFailed(str(error)) from None
        deadline = started + task.timeout if task.timeout else None
        result = ctx.result
        while True:
            code = execution.wait(self.poll_interval)
            if code is not None:
                break
            if ctx.stop.is_set():
                code = execution.abort(ctx.abort_grace)
                result.aborted = True
                result.reason = ctx.stop.reason or "aborted"
                break
            if deadline is not None and ctx.clock() >= deadline:
                code = execution.abort(ctx.abort_grace)
                result.timed_out = True
                result.reason = (
                    f"timeout: the task ran longer than its timeout of {task.timeout:g} s and was stopped"
                )
                ctx.log(result.reason)
                break
        result.exit_code = code
        result.duration = ctx.clock() - started
        if result.aborted:
            raise TaskAborted(result.reason)


class UploadOutputs:
    """Files the task wrote to ``$CLEARML_OUTPUT_DIR`` go to its output URI through the storage
    layer; with no URI anywhere, they stay under ``~/.clearml-core/outputs/<task id>``."""

    name = "upload_outputs"

    def run(self, ctx: TaskContext) -> None:
        output = ctx.output_dir
        if output is None or not output.is_dir():
            return
        files = sorted(p for p in output.rglob("*") if p.is_file())
        if not files:
            return
        task = ctx.task
        destination = (
            task.output_uri or ctx.config.get_str("sdk.development.default_output_uri", "") or ""
        ).strip()
        relative = [str(p.relative_to(output)) for p in files]
        if destination:
            remote = f"{destination.rstrip('/')}/{_safe(task.project or 'default')}/{_safe(task.name or 'task')}.{task.id}/output"
            ctx.log(f"uploading {len(files)} output file(s) to {remote}")
            try:
                from clearml_core.storage.manager import StorageManager

                StorageManager.upload_folder(str(output), remote)
            except Exception as error:
                raise TaskFailed(f"uploading the outputs to {remote} failed: {error}") from None
            uri = remote
            shutil.rmtree(output, ignore_errors=True)
        else:
            from clearml_core.agent.identity import state_dir

            keep = state_dir() / "outputs" / task.id
            if keep.exists():
                shutil.rmtree(keep, ignore_errors=True)
            keep.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(output), str(keep))
            uri = keep.as_uri()
            ctx.log(f"kept {len(files)} output file(s) in {keep} (no output URI is set)")
        ctx.state["outputs"] = {"uri": uri, "files": relative}


def _safe(text: str) -> str:
    return re.sub(r"[^\w.\-]+", "_", text).strip("_") or "_"


def default_stages() -> list[Stage]:
    """The agent's stages, in order: prepare_workdir, code, environment, run, upload_outputs."""
    from clearml_core.vcs.stage import CodeStage

    return [PrepareWorkdir(), CodeStage(), PythonEnvironment(), RunEntryPoint(), UploadOutputs()]


# -- the pipeline -----------------------------------------------------------------------------


@dataclass
class StageTiming:
    name: str
    seconds: float
    outcome: str  # ok | failed | aborted | error


class Pipeline:
    """An ordered list of stages, run in order until one raises."""

    def __init__(self, stages: Iterable[Stage]) -> None:
        self.stages: list[Stage] = list(stages)
        self.timings: list[StageTiming] = []
        self._check_names()

    def _check_names(self) -> None:
        names = [stage.name for stage in self.stages]
        duplicates = {name for name in names if names.count(name) > 1}
        if duplicates:
            raise ValueError(f"two pipeline stages are called {', '.join(sorted(duplicates))}")

    @property
    def names(self) -> list[str]:
        return [stage.name for stage in self.stages]

    def _index(self, name: str) -> int:
        for index, stage in enumerate(self.stages):
            if stage.name == name:
                return index
        raise KeyError(f"no pipeline stage called {name!r} (stages: {', '.join(self.names)})")

    def replace(self, name: str, *stages: Stage) -> Pipeline:
        index = self._index(name)
        self.stages[index : index + 1] = list(stages)
        self._check_names()
        return self

    def insert_before(self, name: str, *stages: Stage) -> Pipeline:
        index = self._index(name)
        self.stages[index:index] = list(stages)
        self._check_names()
        return self

    def insert_after(self, name: str, *stages: Stage) -> Pipeline:
        index = self._index(name) + 1
        self.stages[index:index] = list(stages)
        self._check_names()
        return self

    def run(self, ctx: TaskContext) -> None:
        """Run every stage; cleanups run in reverse order whatever happened. Exceptions from
        stages propagate (:class:`TaskFailed`, :class:`TaskAborted`, or a bug)."""
        started: list[Stage] = []
        try:
            for stage in self.stages:
                ctx.check()
                started.append(stage)
                begin = time.monotonic()
                outcome = "error"
                try:
                    stage.run(ctx)
                    outcome = "ok"
                except TaskFailed:
                    outcome = "failed"
                    raise
                except TaskAborted:
                    outcome = "aborted"
                    raise
                finally:
                    self.timings.append(StageTiming(stage.name, time.monotonic() - begin, outcome))
        finally:
            for stage in reversed(started):
                cleanup = getattr(stage, "cleanup", None)
                if cleanup is None:
                    continue
                try:
                    cleanup(ctx)
                except Exception:
                    ctx.log(f"cleanup of stage {stage.name} failed:\n{traceback.format_exc().rstrip()}")


__all__ = [
    "Pipeline",
    "Stage",
    "TaskAborted",
    "TaskContext",
    "TaskFailed",
    "default_stages",
]
