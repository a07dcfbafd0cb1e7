"""A tiny counting reverse proxy: every request the client sends, seen at the server side.

Put it in front of a storage server (moto, Azurite, an emulator) and point the driver at it;
``requests`` lists ``(method, path, query)`` of each request in arrival order, so a backend's tests
can assert "one request per small object". Bodies are forwarded whole (tests send small objects).
"""

from __future__ import annotations

import http.client
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "upgrade", "te"}


class CountingProxy:
    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.requests: list[tuple[str, str, str]] = []
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
                hook = proxy.before_forward
                if hook is not None:
                    hook(self.command, parts.path, parts.query)
                length = int(self.headers.get("Content-Length") or 0)
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
        with self._lock:
            self.requests.clear()
            self.authorizations.clear()

    def methods(self) -> list[str]:
        with self._lock:
            return [method for method, _path, _query in self.requests]


@contextmanager
def counting_proxy(upstream_port: int) -> Iterator[CountingProxy]:
    proxy = CountingProxy(upstream_port).start()
    try:
        yield proxy
    finally:
        proxy.stop()
