"""The ``code`` stage: a git task's repository checked out into ``<task>/code``.

It runs after ``prepare_workdir`` (which made the task's folder and left ``code/`` free) and
before ``environment`` (which may read the repository's requirements), and does nothing for
local-folder tasks. What it checked out goes to ``ctx.state["code"]`` and from there into the
task's ``runtime.code`` (url, resolved commit, whether the VCS cache had it, submodules, diff).

A :class:`~clearml_core.vcs.errors.VcsError` fails the task with its message as the reason; the
daemon goes on with the next task.
"""

from __future__ import annotations

import os
import shutil

from clearml_core.agent.context import TaskContext, TaskFailed
from clearml_core.vcs.errors import VcsError


class CodeStage:
    """Check out the task's repository (see the module docstring)."""

    name = "code"

    def run(self, ctx: TaskContext) -> None:
        from clearml_core.vcs.checkout import Checkout

        script = ctx.task.script
        if script.source != "git":
            return
        dest = ctx.work_dir / "code"
        shutil.rmtree(dest, ignore_errors=True)
        try:
            checkout = Checkout.from_config(ctx.config, log=ctx.log, check_stop=ctx.check)
            result = checkout.run(
                script.repository,
                dest,
                commit=script.commit,
                branch=script.branch,
                tag=script.tag,
                diff=script.diff,
            )
        except VcsError as error:
            shutil.rmtree(dest, ignore_errors=True)
            raise TaskFailed(str(error)) from None
        except OSError as error:  # the cache folder not writable, a full disk while writing the diff
            shutil.rmtree(dest, ignore_errors=True)
            raise TaskFailed(f"cannot check out {script.repository}: {error}") from None
        ctx.code_dir = dest
        ctx.state["code"] = result.to_dict()
        where = (
            "from the VCS cache"
            if result.cached and not result.fetched
            else ("fetched into the VCS cache" if result.cached else "cloned")
        )
        extras = [f"branch {result.branch}"] if result.branch else []
        if result.submodules:
            extras.append(f"{len(result.submodules)} submodule(s)")
        if result.diff_applied:
            extras.append("uncommitted changes applied")
        ctx.log(
            f"code: {result.url} at {result.commit[:12]} {where} in {result.seconds:.2f} s"
            + (f" ({', '.join(extras)})" if extras else "")
        )
        if ctx.config.get_bool("agent.force_git_root_python_path", False):
            current = ctx.env.get("PYTHONPATH", os.environ.get("PYTHONPATH", ""))
            ctx.env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(dest), current]))


__all__ = ["CodeStage"]
