"""The ``upload_outputs`` stage: what the task wrote to ``$CLEARML_OUTPUT_DIR``, kept.

With an output URI (the task's, else ``sdk.development.default_output_uri``) the files go there
through the storage layer, under ``<project>/<name>.<task id>/output``; without one they are moved
to ``~/.clearml-core/outputs/<task id>``. Where they went is left in ``ctx.state["outputs"]``.
"""

from __future__ import annotations

import re
import shutil

from clearml_core.agent.context import TaskContext, TaskFailed


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


__all__ = ["UploadOutputs"]
