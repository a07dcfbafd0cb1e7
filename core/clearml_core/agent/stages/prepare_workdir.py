"""The ``prepare_workdir`` stage: the task's own folder, with ``code/`` and ``output/``.

A local-folder task's files are copied into ``code/`` (without :data:`COPY_IGNORE`); a git task's
``code/`` is left for the ``code`` stage; any other task gets an empty one. What an earlier run of
the same task left is removed first, and ``code/`` and ``venv/`` again when the task ends, unless
``agent.keep_task_workdir``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from clearml_core.agent.context import TaskContext, TaskFailed

COPY_IGNORE = (".git", ".venv", "__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache")
"""Folders a local-folder task does not carry into its working dir."""


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


__all__ = ["COPY_IGNORE", "PrepareWorkdir"]
