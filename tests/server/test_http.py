"""The server's HTTP/1.1 layer (``server/httpd.py``) on a real socket: framing, keep-alive, refusals."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from clearml_core.errors import UserError
from clearml_core.server.httpd import HttpRequest, HttpResponse, Listener


class Echo:
    """Answers with the method, path, the headers it was given and the body, one per line."""

    name = "api server"

    def handle(self, request: HttpRequest) -> HttpResponse:
        body = request.read_body(1 << 20)
        lines = [request.method, request.path, *(f"{k}={v}" for k, v in sorted(request.headers.items()))]
        return HttpResponse(200, "\n".join(lines).encode() + b"\n" + body)


@pytest.fixture
def listener() -> Iterator[Listener]:
    running = Listener(Echo(), "127.0.0.1", 0)
    running.start()
    yield running
    running.stop()


def _connect(listener: Listener) -> socket.socket:
    conn = socket.create_connection(("127.0.0.1", listener.port), timeout=10)
    return conn


def _response(conn: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """One response read off the connection (its headers lower-cased)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed after {data!r}")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in header_lines)}
    length = int(headers.get("content-length", "0"))
    while len(rest) < length:
        rest += conn.recv(65536)
    return int(status_line.split()[1]), headers, rest[:length]


def _closed(conn: socket.socket) -> bool:
    try:
        return conn.recv(1) == b""
    except (ConnectionResetError, TimeoutError):
        return True


def test_two_requests_on_one_kept_alive_connection(listener: Listener) -> None:
    with _connect(listener) as conn:
        for index in range(2):
            body = f"body {index}".encode()
            conn.sendall(
                b"POST /a%20b HTTP/1.1\r\nHost: x\r\nX-Mixed-Case: Value\r\n"
                + f"Content-Length: {len(body)}\r\n\r\n".encode()
                + body
            )
            status, headers, answer = _response(conn)
            assert status == 200
            assert "connection" not in headers
            assert answer.splitlines()[:2] == [b"POST", b"/a b"]
            assert b"x-mixed-case=Value" in answer.splitlines()
            assert answer.endswith(body)


def test_http_1_0_closes_unless_kept_alive_and_connection_close_is_honoured(listener: Listener) -> None:
    with _connect(listener) as conn:
        conn.sendall(b"GET /x HTTP/1.0\r\n\r\n")
        assert _response(conn)[0] == 200
        assert _closed(conn)
    with _connect(listener) as conn:
        conn.sendall(b"GET /x HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        assert _response(conn)[0] == 200
        conn.sendall(b"GET /y HTTP/1.1\r\nConnection: close\r\n\r\n")
        status, headers, _ = _response(conn)
        assert (status, headers.get("connection")) == (200, "close")
        assert _closed(conn)


def test_a_chunked_body_is_read_whole(listener: Listener) -> None:
    with _connect(listener) as conn:
        conn.sendall(
            b"POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n"
        )
        status, _, answer = _response(conn)
        assert status == 200 and answer.endswith(b"\nabcde")


def test_expect_100_continue_gets_the_interim_answer_first(listener: Listener) -> None:
    with _connect(listener) as conn:
        conn.sendall(b"PUT /u HTTP/1.1\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
        interim = conn.recv(64)
        assert interim.startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        conn.sendall(b"data")
        status, _, answer = _response(conn)
        assert status == 200 and answer.endswith(b"data")


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GET /x\r\n\r\n", 400),  # no version
        (b"GET /x HTTP/2.0\r\n\r\n", 400),
        (b"GET /x HTTP/1.1\r\nno colon here\r\n\r\n", 400),
        (b"GET /x HTTP/1.1\r\nA: b\r\n folded: on\r\n\r\n", 400),
        (b"GET /x HTTP/1.1\r\n" + b"".join(b"H%d: v\r\n" % i for i in range(101)) + b"\r\n", 431),
        (b"GET /x HTTP/1.1\r\nA: " + b"v" * 70000 + b"\r\n\r\n", 431),
        (b"POST /x HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 5\r\n\r\nabcde", 400),
        (b"POST /x HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400),
    ],
    ids=["no-version", "http2", "no-colon", "folded", "too-many", "too-long", "two-lengths", "negative"],
)
def test_malformed_requests_are_refused_and_the_connection_closed(
    listener: Listener, request_bytes: bytes, status: int
) -> None:
    with _connect(listener) as conn:
        conn.sendall(request_bytes)
        assert _response(conn)[0] == status
        assert _closed(conn)


def test_listeners_sharing_a_port_all_serve_it() -> None:
    """What ``server --workers`` does across processes: listeners with ``reuse_port`` on one port
    each get a share of its connections."""
    first = Listener(Echo(), "127.0.0.1", 0, reuse_port=True)
    second = Listener(Echo(), "127.0.0.1", first.port, reuse_port=True)
    served = {id(first.app): 0, id(second.app): 0}
    for listener in (first, second):
        app = listener.app
        handle = app.handle

        def counting(request: HttpRequest, app: object = app, handle=handle) -> HttpResponse:  # type: ignore[no-untyped-def]
            served[id(app)] += 1
            return handle(request)

        app.handle = counting  # type: ignore[method-assign]
        listener.start()
    try:
        for _ in range(40):
            with _connect(first) as conn:
                conn.sendall(b"GET /x HTTP/1.1\r\nConnection: close\r\n\r\n")
                assert _response(conn)[0] == 200
        assert all(served.values()), served
    finally:
        second.stop()
        first.stop()


def test_a_port_in_use_without_reuse_port_is_a_clear_error() -> None:
    first = Listener(Echo(), "127.0.0.1", 0)
    try:
        with pytest.raises(UserError, match="cannot listen on"):
            Listener(Echo(), "127.0.0.1", first.port, reuse_port=True)
    finally:
        first.stop()
