"""Test servers on loopback: a free port, a process started on it, waited for, stopped by its PID.

A backend's tests run against a real server (moto, Azurite, an emulator, an sshd) started on
127.0.0.1 for the session. :func:`server_process` does the part every such fixture shares::

    @pytest.fixture(scope="session")
    def memo_server(tmp_path_factory):
        port = free_port()
        log = tmp_path_factory.mktemp("memo") / "memo.log"
        with server_process(["memo-server", "--port", str(port)], port, log=log, name="memo") as process:
            yield MemoServer(port, process.pid)

A server that exits or does not listen in time fails the fixture with its log, so every test
that needs it errors (never skips) and says why.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

__all__ = ["free_port", "server_process", "stop_process", "wait_for_port"]

HOST = "127.0.0.1"


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def wait_for_port(
    port: int,
    process: subprocess.Popen[bytes] | None = None,
    timeout: float = 60,
    *,
    name: str | None = None,
) -> None:
    """Wait until something accepts connections on 127.0.0.1:``port``.

    Raises :class:`RuntimeError` when ``process`` exits first (named ``name``, else "the server
    on port N") or after ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            who = name or f"the server on port {port}"
            raise RuntimeError(f"{who} exited with code {process.returncode}")
        with socket.socket() as sock:
            sock.settimeout(0.5)
            if sock.connect_ex((HOST, port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {HOST}:{port} after {timeout} s")


def stop_process(process: subprocess.Popen[bytes], timeout: float = 10) -> None:
    """Terminate ``process`` (by its PID), killing it when it does not exit in ``timeout`` seconds."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=timeout)


@contextlib.contextmanager
def server_process(
    command: Sequence[str],
    port: int,
    *,
    log: Path,
    name: str,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    writes_log: bool = False,
    timeout: float = 60,
) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``command``, a server for 127.0.0.1:``port``, until the block ends; stop it by its PID.

    Its output goes to ``log``, unless ``writes_log``: then the server writes ``log`` itself (an
    sshd's ``-E``) and its output is left alone. A server that exits or does not listen within
    ``timeout`` seconds raises :class:`RuntimeError` naming it (``name``) and showing its log.
    """
    with contextlib.ExitStack() as stack:
        output = None if writes_log else stack.enter_context(log.open("wb"))
        stderr = None if writes_log else subprocess.STDOUT
        process = subprocess.Popen(
            list(command), stdout=output, stderr=stderr, cwd=cwd, env=None if env is None else dict(env)
        )
    try:
        try:
            wait_for_port(port, process, timeout, name=name)
        except RuntimeError as error:
            text = log.read_text(errors="replace") if log.exists() else ""
            raise RuntimeError(f"{error}; {name}'s log:\n{text}") from None
        yield process
    finally:
        stop_process(process)
