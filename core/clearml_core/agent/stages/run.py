"""The ``run`` stage: the task's entry point, started through the execution environment.

The command line comes from the entry point (:func:`entry_point_argv`: ``train.py``, ``-m pkg``, a
``*.sh`` script or an executable), the process environment from :func:`task_environment`, and
the execution environment (``venv`` locally, ``docker``) starts it. The stage waits, polling for
an abort (the task then ends ``stopped``) and for the task's timeout (it then fails with the
reason), and leaves what it saw in ``ctx.result``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path

from clearml_core.agent.context import TaskAborted, TaskContext, TaskFailed
from clearml_core.runners.base import Execution, ExecutionError, LaunchSpec

OUTPUT_DIR_VARIABLE = "CLEARML_OUTPUT_DIR"
TASK_ID_VARIABLE = "CLEARML_TASK_ID"
WORKER_ID_VARIABLE = "CLEARML_WORKER_ID"


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
        supervise(ctx, execution, started, poll_interval=self.poll_interval)
        if ctx.result.aborted:
            raise TaskAborted(ctx.result.reason)


def supervise(ctx: TaskContext, execution: Execution, started: float, *, poll_interval: float = 0.05) -> None:
    """Wait for ``execution`` (started at ``started`` on ``ctx.clock``), stopping it when the task
    is aborted or runs past its timeout; what happened goes to ``ctx.result``. Every environment's
    run stage ends here, so abort and timeout mean the same in a process and in a container."""
    task = ctx.task
    deadline = started + task.timeout if task.timeout else None
    result = ctx.result
    while True:
        code = execution.wait(poll_interval)
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


__all__ = [
    "OUTPUT_DIR_VARIABLE",
    "TASK_ID_VARIABLE",
    "WORKER_ID_VARIABLE",
    "RunEntryPoint",
    "entry_point_argv",
    "supervise",
    "task_environment",
]
