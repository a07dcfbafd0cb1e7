"""HTTP/1.1 on the standard library: one threaded server per role, keep-alive, whole-message writes.

Each role (API, files, web) is an :class:`Application`: it gets a :class:`HttpRequest` and returns a
:class:`HttpResponse`. The handler keeps connections open between requests (ClearML's clients reuse
theirs), writes each response in one piece with Nagle's algorithm off (so a small answer is not
held back waiting for an acknowledgement), and closes a connection whose request body it did not
read to the end, so the next request on it cannot start in the middle of the last one's body.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from email.utils import formatdate
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Protocol
from urllib.parse import unquote

log = logging.getLogger("clearml_core.server.http")

READ_CHUNK = 1024 * 1024
IDLE_TIMEOUT_SEC = 300
"""How long an idle keep-alive connection (and its thread) is kept."""
MAX_HEADER_LINE = 65536
MAX_HEADERS = 100


class BodyTooLarge(Exception):
    """The request body is larger than the application allows."""


class BadBody(Exception):
    """The request body is not framed as HTTP/1.1 says (a bad length or chunk)."""


class HttpRequest:
    """One request: method, path (``%``-decoded), query text, lower-cased headers, the body stream."""

    def __init__(self, handler: _Handler, method: str) -> None:
        self._handler = handler
        self.method = method
        target, _, self.query = handler.path.partition("?")
        self.raw_path = target
        self.path = unquote(target)
        self.headers = handler.header_map
        self.address = str(handler.client_address[0]) if handler.client_address else ""
        self._remaining: int | None = None
        self._chunked = "chunked" in self.headers.get("transfer-encoding", "").lower()
        self._done = False
        length = self.headers.get("content-length")
        if not self._chunked:
            try:
                self._remaining = int(length) if length else 0
            except ValueError:
                raise BadBody(f"Content-Length {length!r} is not a number") from None
            if self._remaining < 0:
                raise BadBody("negative Content-Length")
            self._done = self._remaining == 0

    @property
    def content_length(self) -> int | None:
        return None if self._chunked else self._remaining

    @property
    def fully_read(self) -> bool:
        return self._done

    def iter_body(self, limit: int | None = None) -> Iterator[bytes]:
        """The body in chunks; more than ``limit`` bytes is :class:`BodyTooLarge`."""
        rfile = self._handler.rfile
        seen = 0
        if not self._chunked:
            if limit is not None and (self._remaining or 0) > limit:
                raise BodyTooLarge
            while self._remaining:
                data = rfile.read(min(READ_CHUNK, self._remaining))
                if not data:
                    raise BadBody("the connection closed before the body ended")
                self._remaining -= len(data)
                yield data
            self._done = True
            return
        while True:
            line = rfile.readline(65537)
            try:
                size = int(line.split(b";")[0].strip(), 16)
            except ValueError:
                raise BadBody("malformed chunk size") from None
            if size == 0:
                while rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                    pass
                self._done = True
                return
            seen += size
            if limit is not None and seen > limit:
                raise BodyTooLarge
            data = rfile.read(size)
            rfile.readline(3)
            if len(data) != size:
                raise BadBody("the connection closed inside a chunk")
            yield data

    def read_body(self, limit: int | None = None) -> bytes:
        return b"".join(self.iter_body(limit))


@dataclass
class HttpResponse:
    status: int
    body: bytes | Iterable[bytes] = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    length: int | None = None
    """The body's length when ``body`` is an iterable (a file sent in pieces)."""


class Application(Protocol):
    name: str

    def handle(self, request: HttpRequest) -> HttpResponse: ...


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "clearml-core"
    sys_version = ""
    disable_nagle_algorithm = True
    timeout = IDLE_TIMEOUT_SEC
    server: _Server
    header_map: dict[str, str]
    raw_requestline: bytes

    def parse_request(self) -> bool:
        """The request line and headers, read here rather than by the standard library, whose
        e-mail parser was a third of the server's time on a small API call. Header names are
        lower-cased; repeated headers are joined with commas (so two different Content-Lengths
        cannot both be believed); obsolete line folding is refused."""
        self.command = None  # type: ignore[assignment]
        self.request_version = "HTTP/1.1"  # how errors are answered, before the request line is read
        self.close_connection = True
        self.requestline = line = str(self.raw_requestline, "iso-8859-1").rstrip("\r\n")
        words = line.split()
        if len(words) != 3 or not words[2].startswith("HTTP/1."):
            self.send_error(HTTPStatus.BAD_REQUEST, f"Bad request line {line[:100]!r}")
            return False
        self.command, self.path, self.request_version = words
        headers: dict[str, str] = {}
        while True:
            raw = self.rfile.readline(MAX_HEADER_LINE + 1)
            if raw in (b"\r\n", b"\n", b""):
                break
            name, colon, value = raw.decode("iso-8859-1").partition(":")
            if len(raw) > MAX_HEADER_LINE or len(headers) >= MAX_HEADERS:
                self.send_error(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE)
                return False
            if not colon or not name or name != name.strip():
                self.send_error(HTTPStatus.BAD_REQUEST, "Malformed header line")
                return False
            key, value = name.lower(), value.strip()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        self.header_map = headers
        connection = headers.get("connection", "").lower()
        if self.request_version == "HTTP/1.0":
            self.close_connection = "keep-alive" not in connection
        else:
            self.close_connection = "close" in connection
        if headers.get("expect", "").lower() == "100-continue" and self.request_version != "HTTP/1.0":
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            self.wfile.flush()
        return True

    def _serve(self) -> None:
        try:
            request = HttpRequest(self, self.command)
        except BadBody as error:
            self._send(HttpResponse(400, f"{error}\n".encode(), [("Content-Type", "text/plain")]))
            self.close_connection = True
            return
        try:
            response = self.server.app.handle(request)
        except BodyTooLarge:
            response = HttpResponse(413, b"request body too large\n", [("Content-Type", "text/plain")])
        except BadBody as error:
            response = HttpResponse(400, f"{error}\n".encode(), [("Content-Type", "text/plain")])
        except Exception:  # a bug: answer 500, keep serving
            log.exception("%s %s failed", self.command, request.raw_path)
            response = HttpResponse(500, b"internal server error\n", [("Content-Type", "text/plain")])
        if not request.fully_read:
            self.close_connection = True
        self._send(response, head=self.command == "HEAD")

    do_GET = do_POST = do_PUT = do_DELETE = do_OPTIONS = do_HEAD = do_PATCH = _serve

    def _send(self, response: HttpResponse, *, head: bool = False) -> None:
        body = response.body
        length = len(body) if isinstance(body, (bytes, bytearray)) else response.length
        reason = (
            HTTPStatus(response.status).phrase if response.status in HTTPStatus._value2member_map_ else ""
        )
        lines = [
            f"HTTP/1.1 {response.status} {reason}",
            f"Server: {self.server_version}",
            f"Date: {_http_date()}",
        ]
        lines.extend(f"{name}: {value}" for name, value in response.headers)
        if length is not None:
            lines.append(f"Content-Length: {length}")
        else:
            self.close_connection = True
        if self.close_connection:
            lines.append("Connection: close")
        head_bytes = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        try:
            if isinstance(body, (bytes, bytearray)):
                self.wfile.write(head_bytes if head else head_bytes + body)
            else:
                self.wfile.write(head_bytes)
                if not head:
                    for chunk in body:
                        self.wfile.write(chunk)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        finally:
            closer = getattr(body, "close", None)
            if callable(closer):
                closer()
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "%s %s %s %d",
                self.server.app.name,
                self.command,
                self.path.partition("?")[0],
                response.status,
            )

    def log_message(self, format: str, *args: object) -> None:
        pass  # requests are logged by the applications, without query strings or headers


_date_cache: tuple[int, str] = (0, "")


def _http_date() -> str:
    """The Date header's value, formatted once a second rather than for every response."""
    global _date_cache
    now = int(time.time())
    second, text = _date_cache
    if second != now:
        text = formatdate(now, usegmt=True)
        _date_cache = (now, text)
    return text


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], app: Application, *, reuse_port: bool = False) -> None:
        self.app = app
        self.reuse_port = reuse_port
        family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.address_family = family
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # socketserver's own allow_reuse_port is Python 3.11 and later
        if self.reuse_port:
            self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        super().server_bind()


class Listener:
    """One role's HTTP server, serving in a thread of its own until :meth:`stop`.

    ``reuse_port``: processes that all listen so on one port share its connections (the kernel
    spreads them), which is how ``server --workers`` serves the API from several processes."""

    def __init__(self, app: Application, host: str, port: int, *, reuse_port: bool = False) -> None:
        self.app = app
        try:
            self._server = _Server((host, port), app, reuse_port=reuse_port)
        except OSError as error:
            from clearml_core.errors import UserError

            raise UserError(
                f"the {app.name} cannot listen on {host}:{port}: {error.strerror}; choose another port "
                f"(--{app.name.split()[0]}-port) or stop what uses it"
            ) from None
        self._thread: threading.Thread | None = None

    @property
    def host(self) -> str:
        return str(self._server.server_address[0])

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        host = self.host
        everywhere = host in ("0.0.0.0", "")  # noqa: S104  (naming it, not binding)
        shown = "127.0.0.1" if everywhere else (f"[{host}]" if ":" in host else host)
        return f"http://{shown}:{self.port}"

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._server.serve_forever, name=f"{self.app.name}", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:  # shutdown() waits for a serve loop, forever if none ran
            self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)


__all__ = ["Application", "BadBody", "BodyTooLarge", "HttpRequest", "HttpResponse", "Listener"]
