"""The API session against a scripted ClearML server on loopback: the headers ClearML's clients
send, the API version taken from the token, one sign-in again when a token expires, and the
errors a client gets (the conformance suite and the CLI tests use the real clearml-core server)."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from clearml_core_controlplane_clearml.session import ApiFailure, ApiSession

from clearml_core.controlplane import ControlPlaneError
from clearml_core.errors import UserError


def token(api_version: str) -> str:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    return f"{part({'alg': 'HS256'})}.{part({'api_version': api_version, 'server_version': '1.9.0'})}.sig"


class Scripted(ThreadingHTTPServer):
    """Answers ``auth.login`` with a token of ``api_version``; other calls per ``answers``."""

    def __init__(self, api_version: str) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.api_version = api_version
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        self.answers: list[tuple[int, dict[str, Any]]] = []
        self.login_extra: dict[str, Any] = {}
        """More of ``auth.login``'s data (what clearml-core server announces there)."""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class Handler(BaseHTTPRequestHandler):
    server: Scripted

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.requests.append((self.path, dict(self.headers), body))
        if self.path.endswith("/auth.login"):
            status, data = 200, {"token": token(self.server.api_version), **self.server.login_extra}
        else:
            status, data = self.server.answers.pop(0)
        meta = {
            "result_code": status,
            "result_subcode": data.pop("subcode", 0),
            "result_msg": data.pop("msg", "OK"),
        }
        answer = json.dumps({"meta": meta, "data": data}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def scripted(request: pytest.FixtureRequest) -> Iterator[Scripted]:
    server = Scripted(getattr(request, "param", "2.31"))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_headers_version_and_a_second_sign_in_when_the_token_expires(scripted: Scripted) -> None:
    session = ApiSession(scripted.url, "AK", "the-secret-5150", worker="host:cpu")
    scripted.answers += [(200, {"queues": []}), (401, {"msg": "Invalid token"}), (200, {"queues": ["q"]})]

    assert session.call("queues.get_all", {}) == {"queues": []}
    assert session.call("queues.get_all", {}, worker="other:gpu") == {"queues": ["q"]}

    paths = [path for path, _, _ in scripted.requests]
    assert paths == [
        "/auth.login",
        "/v2.23/queues.get_all",  # the server speaks 2.31; this client asks for at most 2.23
        "/v2.23/queues.get_all",
        "/auth.login",
        "/v2.23/queues.get_all",
    ]
    login = scripted.requests[0][1]
    assert login["Authorization"] == "Basic " + base64.b64encode(b"AK:the-secret-5150").decode()
    for _, headers, _ in scripted.requests[1:]:
        assert headers["X-ClearML-Client"].startswith("clearml-core-")
        assert headers["Content-Type"] == "application/json"
    assert scripted.requests[1][1]["Authorization"] == f"Bearer {token('2.31')}"
    assert scripted.requests[1][1]["X-ClearML-Worker"] == "host:cpu"
    assert scripted.requests[4][1]["X-ClearML-Worker"] == "other:gpu"
    assert session.server_version == "1.9.0"


def test_extensions_are_what_the_last_sign_in_announced(scripted: Scripted) -> None:
    session = ApiSession(scripted.url, "AK", "SK")
    assert not session.offers("queues.wait_for_tasks")  # ClearML's server announces nothing
    assert session.extensions == frozenset()

    scripted.login_extra = {"clearml_core": {"extensions": ["queues.wait_for_tasks", 7]}}
    scripted.answers += [(401, {"msg": "Invalid token"}), (200, {})]
    session.call("queues.get_all", {})  # signs in again: the server now announces the long poll
    assert session.extensions == frozenset({"queues.wait_for_tasks"})
    assert session.offers("queues.wait_for_tasks")

    scripted.login_extra = {"clearml_core": "not a mapping"}
    session.login()
    assert session.extensions == frozenset()


def test_an_error_answer_keeps_code_subcode_and_message(scripted: Scripted) -> None:
    session = ApiSession(scripted.url, "AK", "SK")
    scripted.answers.append((400, {"subcode": 101, "msg": "Invalid task id: id=nope"}))
    with pytest.raises(ApiFailure) as info:
        session.call("tasks.get_by_id", {"task": "nope"})
    assert (info.value.code, info.value.subcode) == (400, 101)
    assert str(info.value) == "tasks.get_by_id: Invalid task id: id=nope (error 400/101)"


@pytest.mark.parametrize("scripted", ["2.5"], indirect=True)
def test_a_server_older_than_the_oldest_api_is_refused(scripted: Scripted) -> None:
    with pytest.raises(ControlPlaneError, match=r"speaks API 2\.5; clearml-core needs 2\.9 or newer"):
        ApiSession(scripted.url, "AK", "SK").login()


@pytest.mark.parametrize("scripted", ["2.10"], indirect=True)
def test_an_older_server_is_asked_in_its_own_version(scripted: Scripted) -> None:
    session = ApiSession(scripted.url, "AK", "SK")
    assert session.speaks((2, 9)) and not session.speaks((2, 13))
    scripted.answers.append((200, {"tasks": []}))
    session.call("tasks.get_all", {})
    assert scripted.requests[-1][0] == "/v2.10/tasks.get_all"


def test_missing_credentials_say_where_to_set_them() -> None:
    with pytest.raises(UserError, match="CLEARML_API_ACCESS_KEY and CLEARML_API_SECRET_KEY"):
        ApiSession("http://127.0.0.1:9", "", "")
    with pytest.raises(UserError, match="is not an http"):
        ApiSession("ftp://host", "AK", "SK")
