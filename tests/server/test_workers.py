"""``clearml-core server --workers N``: N processes serve one API port, and live and die together."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from clearml_core.testing.clearml_server import ApiClient
from clearml_core.testing.servers import free_port, wait_for_port

KEY = "WORKERSTESTKEY00000000000000000"


class Served:
    def __init__(self, process: subprocess.Popen[bytes], port: int, secret: str, log: Path) -> None:
        self.process, self.port, self.secret, self.log = process, port, secret, log

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def workers(self) -> list[psutil.Process]:
        """The live worker processes (a killed one is a zombie until the main process reaps it)."""
        found: list[psutil.Process] = []
        for child in psutil.Process(self.process.pid).children():
            try:
                if "--main-pid" in child.cmdline():
                    found.append(child)
            except (psutil.ZombieProcess, psutil.NoSuchProcess):
                continue
        return found

    def listening_workers(self) -> int:
        """How many workers listen on the API port (a new one takes a moment to import and bind)."""
        count = 0
        for worker in self.workers():
            try:
                connections = worker.net_connections("tcp")
            except (psutil.ZombieProcess, psutil.NoSuchProcess):
                continue
            count += any(c.laddr.port == self.port and c.status == psutil.CONN_LISTEN for c in connections)
        return count

    def serving_pids(self, connections: int) -> set[int]:
        """Open ``connections`` kept-alive connections, call the API on each; the processes that
        hold their server ends."""
        clients = [ApiClient(self.url, KEY, self.secret) for _ in range(connections)]
        try:
            for api in clients:
                api.login()
                assert api.call("queues.get_default").status == 200
            holders = set()
            for process in [psutil.Process(self.process.pid), *self.workers()]:
                if any(c.laddr.port == self.port and c.raddr for c in process.net_connections("tcp")):
                    holders.add(process.pid)
            return holders
        finally:
            for api in clients:
                api.close()


def _until(check: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {seconds} s: {what}")
        time.sleep(0.1)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    port, secret = free_port(), secrets.token_urlsafe(24)
    (tmp_path / "config").mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLEARML", "TRAINS"))}
    env.update(
        HOME=str(tmp_path),
        CLEARML_CONFIG_DIR=str(tmp_path / "config"),
        CLEARML_API_ACCESS_KEY=KEY,
        CLEARML_API_SECRET_KEY=secret,
    )
    log = tmp_path / "server.log"
    command = [sys.executable, "-m", "clearml_core.cli.main", "server", "--role", "api", "--workers", "3"]
    command += ["--api-port", str(port), "--control-plane", f"sqlite:///{tmp_path / 'server.db'}"]
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    running = Served(process, port, secret, log)
    try:
        wait_for_port(port, process, 60, name="clearml-core server")
        _until(lambda: running.listening_workers() == 2, 60, "two worker processes on the API port")
        yield running
    finally:
        leftovers = running.workers() if process.poll() is None else []
        process.kill()
        process.wait(30)
        for child in leftovers:
            child.kill()


def test_workers_serve_the_api_port_with_the_main_process(served: Served) -> None:
    assert "(3 processes)" in served.log.read_text()
    assert len(served.serving_pids(30)) >= 2, "connections were served by one process only"
    assert served.secret not in " ".join(" ".join(p.cmdline()) for p in served.workers())


def test_a_worker_that_dies_is_started_again(served: Served) -> None:
    victim = served.workers()[0]
    victim.kill()
    _until(
        lambda: victim.pid not in {w.pid for w in served.workers()} and served.listening_workers() == 2,
        30,
        "a new worker",
    )
    assert "ended with exit code" in served.log.read_text()
    assert served.serving_pids(5)


def test_workers_stop_with_the_main_process(served: Served) -> None:
    workers = served.workers()
    served.process.send_signal(signal.SIGTERM)
    assert served.process.wait(30) == 0
    assert not any(worker.is_running() and worker.status() != psutil.STATUS_ZOMBIE for worker in workers)


def test_workers_stop_by_themselves_when_the_main_process_is_killed(served: Served) -> None:
    workers = served.workers()
    served.process.kill()
    served.process.wait(30)

    def gone() -> bool:
        return not any(worker.is_running() and worker.status() != psutil.STATUS_ZOMBIE for worker in workers)

    _until(gone, 15, "the workers of a killed main process to stop")
