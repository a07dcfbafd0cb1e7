"""Helpers of the conda manager's tests: building a task's environment (a channel is served over
HTTP by the environment tests' ``serving``)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from clearml_core.config import Config
from clearml_core.controlplane import Requirements, Task
from clearml_core.environments import BuildFailed, BuildLog
from clearml_core.environments.builder import EnvironmentBuilder, PreparedEnvironment


class Built:
    """A prepared environment and the log lines of its build."""

    def __init__(self, prepared: PreparedEnvironment, lines: list[str]) -> None:
        self.prepared = prepared
        self.lines = lines
        assert prepared.env is not None
        self.env = prepared.env

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    def names(self) -> dict[str, str]:
        """``{name: line}`` of the frozen list."""
        return {re.split(r"[=@ ]", line, maxsplit=1)[0]: line for line in self.prepared.frozen}

    def python(self, code: str) -> str:
        done = subprocess.run(
            [str(self.env.python), "-c", code],
            capture_output=True,
            text=True,
            env={"PATH": "/usr/bin:/bin", **self.prepared.environ},
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()


def conda_task(conda: str = "", pip: list[str] | None = None) -> Task:
    return Task(requirements=Requirements(conda=conda, pip=list(pip or [])))


def prepare(
    config: Config,
    task: Task,
    private: Path,
    *,
    code: Path | None = None,
    gpus: list[str] | None = None,
) -> Built:
    """The task's environment through the cache (``source`` cache-build or cache-hit); raises
    ``BuildFailed`` with ``.lines`` set."""
    lines: list[str] = []
    builder = EnvironmentBuilder(config)
    context = builder.context(code_dir=code, working_dir=code, gpus=gpus)
    log = BuildLog(lambda stream, line: lines.append(line))
    try:
        prepared = builder.prepare(task, context, log, private)
    except BuildFailed as failed:
        failed.lines = lines  # type: ignore[attr-defined]
        raise
    return Built(prepared, lines)


def build_at(config: Config, task: Task, target: Path) -> PreparedEnvironment:
    """The task's environment built at ``target``, outside the cache (``agent build``)."""
    builder = EnvironmentBuilder(config, cache=None)
    return builder.build_at(task, builder.context(), BuildLog(lambda stream, line: None), target)
