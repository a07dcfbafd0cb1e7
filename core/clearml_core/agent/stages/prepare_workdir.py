"""The ``prepare_workdir`` stage: the task's own folder, with ``code/`` and ``output/``.

A local-folder task's files are copied into ``code/`` (without :data:`COPY_IGNORE`); a git task's
``code/`` is left for the ``code`` stage; any other task gets an empty one, holding its script when
the task keeps the script itself in ``script.diff`` (what ClearML's SDK records for a script outside
a repository, and clearml-agent runs the same way). What an earlier run of
the same task left is removed first, and ``code/`` and ``venv/`` again when the task ends, unless
``agent.keep_task_workdir``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from clearml_core.agent.context import TaskContext, TaskFailed

COPY_IGNORE = (".git", ".venv", "__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache")
"""Folders a local-folder task does not carry into its working dir."""


def is_literal_script(diff: str) -> bool:
    """Whether a task's ``script.diff`` is the script itself rather than a git diff (clearml-agent's
    test: a diff starts with ``diff``, or with ``Submodule`` followed by one)."""
    text = diff.lstrip()
    if not text or text.lower().startswith("diff "):
        return False
    lines = text.splitlines()
    return not (
        text.lower().startswith("submodule ")
        and len(lines) > 1
        and lines[1].lstrip().lower().startswith("diff ")
    )


def _write_script(code_dir: Path, working_dir: str, entry_point: str, text: str) -> None:
    root = code_dir.resolve()
    target = (root / working_dir / entry_point).resolve()
    if not target.is_relative_to(root):
        raise TaskFailed(
            f"the task's entry point {entry_point!r} (working dir {working_dir!r}) is outside its code"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")


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
            if script.entry_point and is_literal_script(script.diff):
                _write_script(ctx.code_dir, script.working_dir or ".", script.entry_point, script.diff)

    def cleanup(self, ctx: TaskContext) -> None:
        if ctx.config.get_bool("agent.keep_task_workdir", False):
            return
        for name in ("code", "venv"):
            shutil.rmtree(ctx.work_dir / name, ignore_errors=True)


__all__ = ["COPY_IGNORE", "PrepareWorkdir", "is_literal_script"]
