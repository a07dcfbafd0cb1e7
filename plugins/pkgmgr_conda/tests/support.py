"""Helpers of the conda manager's tests: building a task's environment, a channel served over HTTP."""

from __future__ import annotations

import http.server
import re
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from clearml_core.config import Config
from clearml_core.controlplane import Requirements, Task
from clearml_core.environments import BuildFailed, BuildLog
from clearml_core.environments.builder import EnvironmentBuilder, PreparedEnvironment
from clearml_core.testing.servers import free_port


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


class ChannelServer:
    """A conda channel over HTTP on 127.0.0.1, counting the requests for repodata files."""

    def __init__(self, root: Path, *, max_age: int | None = 600) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.repodata_requests: list[str] = []
        self.held = ""
        """Requests whose path ends with this wait for :meth:`release` (``.tar.bz2``: downloads)."""
        self.waiting = threading.Event()
        self.gate = threading.Event()
        self.gate.set()
        server = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, directory=str(root), **kwargs)

            def do_GET(self) -> None:
                if "repodata" in self.path:
                    server.repodata_requests.append(self.path)
                if server.held and self.path.endswith(server.held):
                    server.waiting.set()
                    server.gate.wait(120)
                super().do_GET()

            def end_headers(self) -> None:
                if max_age is not None:
                    self.send_header("Cache-Control", f"public, max-age={max_age}")
                super().end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def hold(self, suffix: str) -> None:
        self.held = suffix
        self.waiting.clear()
        self.gate.clear()

    def release(self) -> None:
        self.gate.set()

    def __enter__(self) -> ChannelServer:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.gate.set()
        self._httpd.shutdown()
        self._httpd.server_close()


@contextmanager
def serving_channel(root: Path, *, max_age: int | None = 600) -> Iterator[ChannelServer]:
    with ChannelServer(root, max_age=max_age) as server:
        yield server
