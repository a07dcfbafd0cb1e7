"""The ``environment`` stage: the task's interpreter from the package manager and the cache.

:class:`PythonEnvironment` resolves the manager (``agent.package_manager.type``), computes
the cache key, leases a cached environment or builds one, and points the ``run`` stage at its
``python`` (with the variables the manager's ``activation`` gives: ``VIRTUAL_ENV`` and ``PATH``).
The frozen package list goes into the task record (``requirements.frozen``, and what the
manager's ``requirements_update`` asks for) and a summary into ``runtime["environment"]``. A
build that fails ends the task with the installer's own one-line reason; an abort stops the installer.
The lease is given back (or a private environment deleted) when the task's stages clean up.

In standalone mode (``--standalone-mode``, as clearml-agent's) nothing is built or installed and
nothing is fetched for the environment: the task runs with ``agent.python_binary`` or the agent's
own interpreter, as it is, whatever requirements it records.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from clearml_core.agent.context import TaskAborted, TaskContext, TaskFailed
from clearml_core.environments.builder import EnvironmentBuilder, PreparedEnvironment
from clearml_core.environments.process import BuildAborted, BuildFailed, BuildLog
from clearml_core.environments.requirements import RequirementsError
from clearml_core.errors import UserError

log = logging.getLogger(__name__)

STATE_KEY = "environment"


def private_environment_dir(ctx: TaskContext) -> Path:
    """Where an uncached environment of this task is built: under ``agent.venvs_dir``."""
    base = ctx.config.path("agent.venvs_dir") or (ctx.work_dir / "venvs")
    return base / f"task-{ctx.task.id or 'local'}"


class PythonEnvironment:
    """The interpreter of the task: the agent's own when the task needs no packages, else an
    environment from the package manager (``agent.package_manager.type``) through the environment
    cache (see the module docstring)."""

    name = "environment"

    def run(self, ctx: TaskContext) -> None:
        if ctx.options.standalone:
            _standalone(ctx)
            return
        build_log = BuildLog(
            ctx.sink.write, should_stop=lambda: (ctx.stop.reason or "aborted") if ctx.stop.is_set() else None
        )
        image = ""
        if getattr(ctx.environment, "name", "venv") != "venv":
            image = ctx.task.container.image or ctx.default_image or ""
        try:
            builder = EnvironmentBuilder(ctx.config)
            context = builder.context(
                code_dir=ctx.code_dir,
                working_dir=ctx.cwd if ctx.code_dir is not None else None,
                gpus=ctx.gpus,
                image=image,
                scratch_dir=ctx.work_dir,
            )
            prepared = builder.prepare(ctx.task, context, build_log, private_environment_dir(ctx))
        except BuildAborted as aborted:
            raise TaskAborted(str(aborted) or "aborted") from None
        except BuildFailed as failed:
            raise TaskFailed(str(failed)) from None
        except (RequirementsError, UserError) as error:
            raise TaskFailed(str(error)) from None
        ctx.state[STATE_KEY] = prepared
        ctx.python = prepared.python
        ctx.env.update(prepared.environ)
        _record(ctx, prepared)

    def cleanup(self, ctx: TaskContext) -> None:
        release_environment(ctx)


def _standalone(ctx: TaskContext) -> None:
    python = ctx.config.get_str("agent.python_binary", "") or sys.executable
    prepared = PreparedEnvironment(python=python, source="standalone")
    ctx.python = prepared.python
    ctx.log(f"standalone mode: the task runs with {prepared.python} as it is; nothing is installed")
    _record(ctx, prepared)


def _record(ctx: TaskContext, prepared: PreparedEnvironment) -> None:
    task = ctx.task
    task.runtime = {**(task.runtime or {}), STATE_KEY: prepared.record()}
    if prepared.env is None:
        return
    task.requirements.frozen = list(prepared.frozen)
    for name, value in prepared.requirements_update.items():
        if name in type(task.requirements).__dataclass_fields__:
            setattr(task.requirements, name, value)
    if ctx.plane is None:
        return
    try:
        ctx.plane.update_task(task.id, requirements=task.requirements)
    except Exception as error:  # the record is informative; the task can still run
        log.warning("task %s: cannot record its frozen packages: %s", task.id, error)
        ctx.log(f"cannot record the frozen package list on the task: {error}")


def release_environment(ctx: TaskContext) -> None:
    """Give the cache entry back; delete a private environment unless ``agent.keep_task_workdir``."""
    prepared = ctx.state.pop(STATE_KEY, None)
    if not isinstance(prepared, PreparedEnvironment):
        return
    if prepared.private_path is not None and ctx.config.get_bool("agent.keep_task_workdir", False):
        ctx.log(f"kept the task's private environment in {prepared.private_path} (agent.keep_task_workdir)")
        prepared.private_path = None
    prepared.release()


__all__ = ["PythonEnvironment", "private_environment_dir", "release_environment"]
