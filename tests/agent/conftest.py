"""Shared helpers of the agent tests: a control plane in the test's home, folder tasks, waiting."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from clearml_core.controlplane import ControlPlane, Parameters, Script, Task, open_control_plane
from tests.helpers import wait_for  # noqa: F401  (the agent tests wait with it)
from tests.vcs.conftest import http_git, repos  # noqa: F401  (fixtures: git servers for the agent's git tests)


@pytest.fixture
def plane(clearml_home: Path) -> Iterator[ControlPlane]:
    """The default embedded plane (``~/.clearml-core/state.db`` of the test's home)."""
    with open_control_plane() as opened:
        yield opened


class Tasks:
    """Creates folder tasks from script text."""

    def __init__(self, plane: ControlPlane, root: Path) -> None:
        self.plane = plane
        self.root = root
        self.count = 0

    def folder(self, script: str, name: str = "main.py") -> Path:
        self.count += 1
        folder = self.root / f"project{self.count}"
        folder.mkdir(parents=True)
        (folder / name).write_text(textwrap.dedent(script), encoding="utf-8")
        return folder

    def create(
        self,
        script: str,
        *,
        args: list[str] | None = None,
        queue: str | None = None,
        name: str = "task",
        env: dict[str, str] | None = None,
        **fields: Any,
    ) -> Task:
        folder = self.folder(script)
        task = Task(
            name=name,
            script=Script(folder=str(folder), entry_point="main.py"),
            parameters=Parameters(argv=args or [], env=env or {}),
            **fields,
        )
        task = self.plane.create_task(task)
        if queue is not None:
            task = self.plane.enqueue(task.id, queue)
        return task


@pytest.fixture
def tasks(plane: ControlPlane, tmp_path: Path) -> Tasks:
    return Tasks(plane, tmp_path / "projects")


class Daemons:
    """``clearml-core agent daemon`` processes started by a test, stopped by pid at its end."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_dir / f"daemon{len(self.processes)}.log", "wb")
        process = subprocess.Popen(
            [sys.executable, "-m", "clearml_core.cli.main", "agent", "daemon", *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
        )
        log.close()
        self.processes.append(process)
        return process

    def output(self, index: int = 0) -> str:
        return (self.log_dir / f"daemon{index}.log").read_text(encoding="utf-8", errors="replace")

    def stop_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
                process.wait(10)


@pytest.fixture
def daemons(tmp_path: Path) -> Iterator[Daemons]:
    started = Daemons(tmp_path / "daemon-logs")
    yield started
    started.stop_all()


def log_lines(plane: ControlPlane, task_id: str) -> list[str]:
    return [line for event in plane.read_logs(task_id) for line in event.lines]
