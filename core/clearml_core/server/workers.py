"""More processes for the API: ``clearml-core server --workers N``.

One Python process serves the API on one core at most (the interpreter lock), and under load the
control-plane round trips of its many threads queue behind that lock. With ``--workers N`` the
main process and N-1 worker processes each listen on the API's port with ``SO_REUSEPORT``, and the
kernel spreads new connections over them. Each has its own connection to the control plane, which
keeps them consistent, as it keeps several servers behind one load balancer. The file server, the
web page and the watchdog stay in the main process.

A worker that dies is started again, with the reason logged. Workers stop with the main process.
A worker whose main process is gone (killed with -9) stops by itself within a second.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Sequence

from clearml_core.errors import UserError

log = logging.getLogger("clearml_core.server")

MAIN_OPTION = "--main-pid"
"""The hidden ``server`` option that makes a process a worker of the main process it names."""

STOP_GRACE_SEC = 10.0


def check_supported() -> None:
    if not hasattr(socket, "SO_REUSEPORT") or not sys.platform.startswith("linux"):
        raise UserError(
            "--workers needs Linux (several processes share a port with SO_REUSEPORT there); "
            "run one server per port behind a load balancer instead"
        )


class ApiWorkers:
    """The worker processes of one main server process (see the module docstring)."""

    def __init__(self, host: str, port: int, count: int, options: Sequence[str] = ()) -> None:
        """``count`` workers listening on ``host:port``; ``options`` are the ``server`` options
        the main process was given (control plane, upload folder), so that workers resolve the
        same settings from the same configuration and environment."""
        self.host, self.port = host, port
        self.count = count
        self.options = list(options)
        self.processes: list[subprocess.Popen[bytes]] = []

    def _command(self) -> list[str]:
        command = [sys.executable, "-m", "clearml_core.cli.main"]
        if logging.getLogger().isEnabledFor(logging.DEBUG):
            command.append("--debug")
        command += ["server", "--role", "api", "--host", self.host, "--api-port", str(self.port)]
        return [*command, MAIN_OPTION, str(os.getpid()), *self.options]

    def _spawn(self) -> subprocess.Popen[bytes]:
        return subprocess.Popen(self._command(), stdin=subprocess.DEVNULL)

    def start(self) -> None:
        self.processes = [self._spawn() for _ in range(self.count)]

    def check(self) -> None:
        """Start again any worker that ended."""
        for index, process in enumerate(self.processes):
            code = process.poll()
            if code is not None:
                log.error(
                    "API worker process %d ended with exit code %s; starting another", process.pid, code
                )
                self.processes[index] = self._spawn()

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            try:
                process.wait(STOP_GRACE_SEC)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def wait_as_worker(stop: threading.Event, main_pid: int) -> None:
    """In a worker: wait until ``stop`` is set or the main process is gone (the worker is no
    longer its child: it may have died before this process got here)."""
    while True:
        if os.getppid() != main_pid:
            log.info("the main server process is gone: this API worker stops")
            return
        if stop.wait(1.0):
            return


__all__ = ["MAIN_OPTION", "ApiWorkers", "check_supported", "wait_as_worker"]
