"""``clearml-core agent build``: a task's environment, built in a folder of your choice.

The same manager, requirements and settings as the agent would use; built outside the cache, at
``--target`` (a new or empty folder), so it can be inspected, activated or copied into an image.
A local-folder task's requirements file is read from its folder; a git task's requirements come
from its record (the repository is not checked out). On a terminal a status line shows what the
installer is doing; in a pipe only the result is printed. Every line also goes to
``<target>/clearml-build/build.log`` (``<target>.build.log`` when the build fails).

clearml-agent's build flags: ``--python-version`` picks the interpreter (see
:func:`~clearml_core.environments.python.find_python_version`), ``--install-globally`` installs
into that interpreter itself (:meth:`EnvironmentBuilder.build_at`), ``--gpus`` / ``--cpu-only``
decide the CUDA the packages are for (:func:`~clearml_core.environments.cuda.cuda_version_for`).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from clearml_core.environments.builder import EnvironmentBuilder, PreparedEnvironment
from clearml_core.environments.process import BuildFailed, BuildLog, mask_urls
from clearml_core.environments.python import find_python_version
from clearml_core.errors import UserError
from clearml_core.progress import ProgressLine

if TYPE_CHECKING:
    from clearml_core.config import Config
    from clearml_core.controlplane import ControlPlane


class StatusLine:
    """The latest thing the build said, on a :class:`~clearml_core.progress.ProgressLine` that
    is erased when the build ends."""

    def __init__(self, stream: TextIO) -> None:
        self._line = ProgressLine(stream, keep=False)

    def __call__(self, stream: str, line: str) -> None:
        text = line.strip()
        if not text:
            return
        self._line.update(mask_urls(text.removeprefix("clearml-core: ")))

    def clear(self) -> None:
        self._line.close()


def build_task_environment(
    plane: ControlPlane,
    task_id: str,
    target: Path,
    *,
    config: Config,
    interactive: bool = False,
    python_version: str | None = None,
    install_globally: bool = False,
    gpus: list[str] | None = None,
) -> PreparedEnvironment:
    """Build the environment of task ``task_id`` at ``target``; raises :class:`UserError` on failure.

    ``gpus``: None builds for the machine's CUDA (unless ``agent.cpu_only``), [] for CPU only,
    devices for their CUDA even where ``agent.cpu_only`` is set.
    """
    task = plane.get_task(task_id)
    target = Path(target).expanduser().absolute()
    code_dir: Path | None = None
    working_dir: Path | None = None
    if task.script.source == "folder":
        folder = Path(task.script.folder).expanduser()
        if folder.is_dir():
            code_dir = folder
            working_dir = (folder / (task.script.working_dir or ".")).resolve()
    lines: list[str] = []
    status = StatusLine(sys.stderr) if interactive else None

    def write(stream: str, line: str) -> None:
        lines.append(line)

    log = BuildLog(write, progress=status)
    if task.script.source == "git":
        log.info("the repository is not checked out for a build: the requirements come from the task record")
    builder = EnvironmentBuilder(config, cache=None)
    try:
        python = find_python_version(python_version) if python_version else None
        context = builder.context(code_dir=code_dir, working_dir=working_dir, gpus=gpus, python=python)
        prepared = builder.build_at(task, context, log, target, install_globally=install_globally)
    except BuildFailed as failed:
        saved = _save_log(target.with_name(target.name + ".build.log"), lines)
        raise UserError(f"building the environment of task {task_id} failed: {failed}" + saved) from None
    except OSError as error:
        saved = _save_log(target.with_name(target.name + ".build.log"), lines)
        raise UserError(f"building the environment of task {task_id} failed: {error}" + saved) from None
    finally:
        if status is not None:
            status.clear()
    _save_log(target / "clearml-build" / "build.log", lines)
    return prepared


def _save_log(path: Path, lines: list[str]) -> str:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(mask_urls(line) for line in lines) + "\n", encoding="utf-8")
    except OSError:
        return ""
    return f" (the whole log: {path})"
