"""Helpers of the environment tests beyond clearml_core.testing.packages: a folder served over HTTP.

The wheels, indexes, offline installers and configurations come from
:mod:`clearml_core.testing.packages` (what a package-manager plugin's tests use too); this adds a
PEP 503 index on 127.0.0.1 that can be told to hold a download, for the abort and ``kill -9``
cases.
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from clearml_core.testing.servers import free_port


class IndexServer:
    """A folder served over HTTP on 127.0.0.1 (a simple index, a conda channel); ``hold()`` makes
    requests for files ending with ``held`` (wheels by default) wait until ``release()``.

    ``downloads`` counts the held kind of files it served, ``paths`` lists every path asked for.
    Responses say ``Cache-Control: max-age=<max_age>`` (None: no such header).
    """

    def __init__(self, root: Path, *, held: str = ".whl", max_age: int | None = 600) -> None:
        self.root = root
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.held = held
        self.gate = threading.Event()
        self.gate.set()
        self.waiting = threading.Event()
        self.downloads = 0
        self.paths: list[str] = []
        server = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, directory=str(root), **kwargs)

            def do_GET(self) -> None:
                server.paths.append(self.path)
                if self.path.split("?")[0].endswith(server.held):
                    server.waiting.set()
                    server.gate.wait(120)
                    server.downloads += 1
                super().do_GET()

            def end_headers(self) -> None:
                if max_age is not None:  # as PyPI does: installers may cache
                    self.send_header("Cache-Control", f"max-age={max_age}")
                super().end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def hold(self) -> None:
        self.waiting.clear()
        self.gate.clear()

    def release(self) -> None:
        self.gate.set()

    def __enter__(self) -> IndexServer:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.gate.set()
        self._httpd.shutdown()
        self._httpd.server_close()


@contextmanager
def serving(root: Path, *, held: str = ".whl", max_age: int | None = 600) -> Iterator[IndexServer]:
    with IndexServer(root, held=held, max_age=max_age) as server:
        yield server
