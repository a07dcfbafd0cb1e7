"""A tiny counting reverse proxy: every request the client sends, seen at the server side.

Put it in front of a storage server (moto, Azurite, an emulator, a plain HTTP server) and point
the driver at it; ``requests`` lists ``(method, path, query)`` of each request in arrival order, so
a backend's tests can assert "one request per small object". Bodies are forwarded whole (tests
send small objects).

It also injects faults: after ``fail_next(503, count=2)`` the next two requests are answered with
a bare ``503`` (no body) instead of reaching the server, which is how the storage conformance kit
checks that a driver turns 401/403, 404 and 5xx answers into the right storage errors.
"""

from __future__ import annotations

import http.client
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "upgrade", "te"}


__all__ = ["CountingProxy", "counting_proxy"]


class CountingProxy:
    """A reverse proxy on 127.0.0.1 in front of ``127.0.0.1:upstream_port``; see the module docstring."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.requests: list[tuple[str, str, str]] = []
        """``(method, path, query)`` of every request, the ones answered with a fault included."""
        self.injected: list[int] = []
        """The status of each fault answered so far, in order."""
        self._faults: list[int] = []
        self.authorizations: list[str] = []
        """The ``Authorization`` header of each request, in arrival order (``""`` when unsigned)."""
        self.before_forward: Callable[[str, str, str], None] | None = None
        """Called with (method, path, query) before a request goes on: a test's hook into timing."""
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                return

            def _forward(self) -> None:
                parts = urlsplit(self.path)
                with proxy._lock:
                    proxy.requests.append((self.command, parts.path, parts.query))
                    proxy.authorizations.append(self.headers.get("Authorization", ""))
                    fault = proxy._faults.pop(0) if proxy._faults else None
                    if fault is not None:
                        proxy.injected.append(fault)
                length = int(self.headers.get("Content-Length") or 0)
                if fault is not None:
                    self.rfile.read(length)  # the client sends the body whatever the answer
                    self.send_response_only(fault, _reason(fault))
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                hook = proxy.before_forward
                if hook is not None:
                    hook(self.command, parts.path, parts.query)
                body = self.rfile.read(length) if length else b""
                upstream = http.client.HTTPConnection("127.0.0.1", proxy.upstream_port, timeout=60)
                try:
                    upstream.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
                    for name, value in self.headers.items():
                        if name.lower() not in _HOP_BY_HOP:
                            upstream.putheader(name, value)
                    upstream.endheaders(body or None)
                    response = upstream.getresponse()
                    data = response.read()
                    self.send_response_only(response.status, response.reason)
                    for name, value in response.getheaders():
                        if name.lower() not in _HOP_BY_HOP and name.lower() != "content-length":
                            self.send_header(name, value)
                    # a HEAD answer's Content-Length is the object's size (Azure reads it), not 0
                    head_length = response.getheader("Content-Length") if self.command == "HEAD" else None
                    self.send_header("Content-Length", head_length or str(len(data)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(data)
                finally:
                    upstream.close()

            do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _forward

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def netloc(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> CountingProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def reset(self) -> None:
        """Forget the requests seen and drop the faults not yet answered."""
        with self._lock:
            self.requests.clear()
            self.authorizations.clear()
            self.injected.clear()
            self._faults.clear()

    def fail_next(self, status: int, count: int = 1) -> None:
        """Answer the next ``count`` requests with ``status`` (and no body) instead of forwarding them."""
        with self._lock:
            self._faults.extend([status] * count)

    @property
    def faults_left(self) -> int:
        """Faults set with :meth:`fail_next` that no request has met yet."""
        with self._lock:
            return len(self._faults)

    def methods(self) -> list[str]:
        with self._lock:
            return [method for method, _path, _query in self.requests]


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Injected"


@contextmanager
def counting_proxy(upstream_port: int) -> Iterator[CountingProxy]:
    """A started :class:`CountingProxy` in front of ``127.0.0.1:upstream_port``, stopped at the end."""
    proxy = CountingProxy(upstream_port).start()
    try:
        yield proxy
    finally:
        proxy.stop()
