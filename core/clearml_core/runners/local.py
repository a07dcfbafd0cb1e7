"""The built-in ``venv`` execution environment: the task runs as a local process of this machine.

Each task gets its own session and process group, under a tiny supervisor process
(:mod:`clearml_core.runners._supervisor`) that the kernel signals when the agent dies
(``PR_SET_PDEATHSIG``) and that adopts the task's orphans (``PR_SET_CHILD_SUBREAPER``); so neither
a ``kill -9`` of the agent nor a task that daemonises a helper leaves processes behind. Aborting
sends SIGTERM to the group and to descendants that left it (found with psutil), then SIGKILL after
a grace period.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from clearml_core.runners.base import (
    DEFAULT_ABORT_GRACE_SEC,
    Execution,
    ExecutionEnvironment,
    ExecutionError,
    LaunchSpec,
    LogSink,
)
from clearml_core.runners.output import LineReader
from clearml_core.runners.prctl import adopt_orphans, die_with_parent

if TYPE_CHECKING:
    import psutil

SUPERVISOR = Path(__file__).with_name("_supervisor.py")
PARENT_DEATH_SIGNAL = signal.SIGHUP  # what _supervisor.py listens for


def _tie_to_agent() -> None:
    """In the forked child, before exec: die with the agent, and adopt the task's orphans."""
    die_with_parent(int(PARENT_DEATH_SIGNAL))
    adopt_orphans()


def stop_process_tree(
    root: int,
    *,
    root_alive: Callable[[], bool],
    group: int | None = None,
    grace: float = DEFAULT_ABORT_GRACE_SEC,
) -> None:
    """SIGTERM to the process group and to every descendant of ``root`` (our own child); SIGKILL
    to whatever is left after ``grace`` seconds.

    ``root_alive`` tells whether our child still runs; it is never waited for here, so its exit
    status stays for :class:`subprocess.Popen` to collect.
    """
    import psutil

    def descendants() -> list[psutil.Process]:
        try:
            return [p for p in psutil.Process(root).children(recursive=True) if _alive(p)]
        except psutil.Error:
            return []

    def signal_all(procs: list[psutil.Process], signum: int) -> None:
        if group is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(group, signum)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if root_alive():
                os.kill(root, signum)
        for proc in procs:
            with contextlib.suppress(psutil.Error):
                proc.send_signal(signum)

    known = descendants()
    signal_all(known, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while True:
        known = [p for p in {*known, *descendants()} if _alive(p)]
        if not known and not root_alive():
            return
        if time.monotonic() >= deadline:
            break
        time.sleep(0.02)
    signal_all(known, signal.SIGKILL)
    deadline = time.monotonic() + 1.0
    while known and time.monotonic() < deadline:  # zombies count as gone: init may reap them late
        time.sleep(0.01)
        known = [p for p in known if _alive(p)]


def _alive(proc: psutil.Process) -> bool:
    import psutil

    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


class LocalExecution(Execution):
    """A task process started by :class:`LocalProcessEnvironment`."""

    def __init__(self, process: subprocess.Popen[bytes], reader: LineReader) -> None:
        self._process = process
        self._reader = reader
        self.pid = process.pid
        self._lock = threading.Lock()
        self._stopped = False

    def poll(self) -> int | None:
        code = self._process.poll()
        if code is None or self._reader.is_alive():
            return None
        return code

    def wait(self, timeout: float | None = None) -> int | None:
        try:
            code = self._process.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        # the supervisor stops leftovers before it exits, so the pipes close right after it
        remaining = None if timeout is None else max(timeout, 5.0)
        self._reader.join(remaining)
        return code

    def abort(self, grace: float = DEFAULT_ABORT_GRACE_SEC) -> int:
        with self._lock:
            if self._process.poll() is None and not self._stopped:
                self._stopped = True
                stop_process_tree(
                    self.pid, root_alive=lambda: self._process.poll() is None, group=self.pid, grace=grace
                )
        code = self.wait(timeout=grace + 5)
        if code is None:  # not even SIGKILL: a process stuck in the kernel; report and move on
            return -int(signal.SIGKILL)
        return code


class LocalProcessEnvironment(ExecutionEnvironment):
    """``venv``: the task's entry point runs as a local process of the agent's machine."""

    name = "venv"

    def start(self, spec: LaunchSpec, sink: LogSink) -> LocalExecution:
        if spec.image:
            raise ExecutionError(
                f"the task asks for the container image {spec.image!r}, which the local 'venv' "
                "environment cannot run: clear the task's container image, or run it with --docker "
                "(pip install 'clearml-core[docker]')"
            )
        if not spec.argv:
            raise ExecutionError("the task has nothing to run: its entry point is empty")
        collapse = True
        if self.config is not None:
            collapse = self.config.get_bool("agent.suppress_carriage_return", True)
        argv = [sys.executable, "-I", "-S", str(SUPERVISOR), str(os.getpid()), *spec.argv]
        try:
            process = subprocess.Popen(
                argv,
                cwd=str(spec.cwd),
                env=dict(spec.env),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
                preexec_fn=_tie_to_agent,  # only prctl calls: safe in a threaded parent
                close_fds=True,
            )
        except OSError as error:
            raise ExecutionError(f"cannot start {spec.argv[0]}: {error.strerror or error}") from None
        assert process.stdout is not None and process.stderr is not None
        reader = LineReader(
            {"stdout": process.stdout, "stderr": process.stderr}, sink.write, collapse_cr=collapse
        )
        reader.start()
        return LocalExecution(process, reader)
