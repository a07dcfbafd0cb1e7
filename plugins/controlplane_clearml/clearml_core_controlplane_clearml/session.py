"""A client session of ClearML's REST API, as ClearML's own clients hold one.

Every call is ``POST /v<version>/<service>.<action>`` with a JSON body; the answer is the
``meta`` / ``data`` envelope, its HTTP status equal to ``meta.result_code``. The session signs in
with ``auth.login`` (HTTP Basic with the access key and secret) for a token it then sends as
``Bearer``, and signs in again once when a call answers 401 (an expired token). The token says
which API version the server speaks; calls use that version, capped at the newest this client
knows (:data:`NEWEST_API`), and a server older than :data:`OLDEST_API` is refused with a clear
message. Each call sends the headers ClearML's clients send: ``X-ClearML-Client`` and
``X-ClearML-Worker``. One kept-alive connection per thread (so a call the server holds, such as
``queues.wait_for_tasks``, delays no other thread's calls); the secret and the token never appear
in a message (both are registered with the redactor that scrubs logs and errors).

``clearml-core server`` lists the calls it offers beyond ClearML's API in ``auth.login``'s reply
(``data.clearml_core.extensions``); :attr:`ApiSession.extensions` holds them, read again at every
sign-in, and :meth:`ApiSession.offers` tells whether one may be sent. ClearML's own server
announces none, so it is never sent a call it does not have.
"""

from __future__ import annotations

import base64
import http.client
import json
import socket
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from clearml_core.controlplane import ControlPlaneError
from clearml_core.errors import UserError

OLDEST_API = (2, 9)
"""The oldest API this client works with (ClearML server 0.16): hyper-parameters sections,
``tasks.started`` with ``force``."""

NEWEST_API = (2, 23)
"""The newest API version this client asks for, even when the server speaks a newer one."""

TIMEOUT = 60.0


def client_name() -> str:
    from clearml_core import __version__

    return f"clearml-core-{__version__}"


@dataclass
class ApiFailure(Exception):
    """A call the server answered with an error: its code, subcode and message."""

    call: str
    code: int
    subcode: int
    message: str

    def __str__(self) -> str:
        return f"{self.call}: {self.message} (error {self.code}/{self.subcode})"


def _version(text: Any) -> tuple[int, int] | None:
    major, _, minor = str(text or "").partition(".")
    if not major.isdigit() or not minor.isdigit():
        return None
    return int(major), int(minor)


def token_claims(token: str) -> dict[str, Any]:
    """The payload of a ClearML session token (a JWT): read, not verified (the server does that)."""
    parts = token.split(".")
    if len(parts) != 3:
        return {}
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload))
    except ValueError:
        return {}
    return claims if isinstance(claims, dict) else {}


class ApiSession:
    """Calls of one ClearML API server with one key pair; safe to share between threads."""

    def __init__(
        self,
        api_server: str,
        access_key: str,
        secret_key: str,
        *,
        worker: str = "",
        verify: Any = True,
        credentials_origin: str = "api.credentials",
    ) -> None:
        parts = urlsplit(api_server)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise UserError(f"api.api_server {api_server!r} is not an http(s) URL; write http://HOST:8008")
        if not access_key or not secret_key:
            raise UserError(
                f"the ClearML API server {api_server} needs an access key and secret: set api.credentials "
                "{ access_key, secret_key } in clearml.conf, or CLEARML_API_ACCESS_KEY and "
                "CLEARML_API_SECRET_KEY (make a key with `clearml-core server credentials create`, or in "
                "the server's web page)"
            )
        from clearml_core.config.redact import redactor

        redactor.add(secret_key)
        self.url = f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"
        self.worker = worker
        self._host, self._port = parts.hostname, parts.port
        self._https = parts.scheme == "https"
        self._prefix = parts.path.rstrip("/")
        self._verify = verify
        self._basic = "Basic " + base64.b64encode(f"{access_key}:{secret_key}".encode()).decode()
        self._credentials_origin = credentials_origin
        self._local = threading.local()
        self._lock = threading.Lock()
        self._token = ""
        self.api_version = ""
        self.server_version = ""
        self.extensions: frozenset[str] = frozenset()

    # -- connections --------------------------------------------------------------------------
    def _connection(self) -> http.client.HTTPConnection:
        conn: http.client.HTTPConnection | None = getattr(self._local, "conn", None)
        if conn is None:
            if self._https:
                from clearml_core.tls import verifying_context

                context = verifying_context(self._verify)
                conn = http.client.HTTPSConnection(self._host, self._port, timeout=TIMEOUT, context=context)
            else:
                conn = http.client.HTTPConnection(self._host, self._port, timeout=TIMEOUT)
            self._local.conn = conn
        return conn

    def _drop_connection(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def close(self) -> None:
        self._drop_connection()

    def _send(self, path: str, body: bytes, headers: Mapping[str, str]) -> tuple[int, bytes]:
        """One request; a kept-alive connection the server closed meanwhile is opened again once."""
        for attempt in (0, 1):
            conn = self._connection()
            try:
                conn.request("POST", self._prefix + path, body=body, headers=dict(headers))
                response = conn.getresponse()
                data = response.read()
                if response.will_close:
                    self._drop_connection()
                return response.status, data
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError) as error:
                self._drop_connection()
                if attempt:
                    raise self._unreachable(error) from None
            except (OSError, http.client.HTTPException) as error:
                self._drop_connection()
                raise self._unreachable(error) from None
        raise AssertionError("unreachable")

    def _unreachable(self, error: BaseException) -> ControlPlaneError:
        reason = (
            "timed out"
            if isinstance(error, (socket.timeout, TimeoutError))
            else str(error) or type(error).__name__
        )
        return ControlPlaneError(f"cannot reach the ClearML API server at {self.url}: {reason}")

    def _headers(self, authorization: str, worker: str | None) -> dict[str, str]:
        return {
            "Content-Type": "application/json",
            "Authorization": authorization,
            "X-ClearML-Client": client_name(),
            "X-ClearML-Worker": worker if worker is not None else self.worker,
        }

    # -- signing in ---------------------------------------------------------------------------
    def login(self) -> str:
        """Sign in with the key pair; learn the server's API version from the token."""
        status, body = self._send("/auth.login", b"{}", self._headers(self._basic, None))
        meta, data = _envelope(body)
        if status == 401:
            raise UserError(
                f"the ClearML API server at {self.url} refused the credentials ({_message(meta, status)}); "
                f"check the access key and secret ({self._credentials_origin})"
            )
        if status != 200 or not isinstance(data, dict) or not data.get("token"):
            raise ControlPlaneError(
                f"signing in to the ClearML API server at {self.url} failed: error {status}, {_message(meta, status)}"
            )
        token = str(data["token"])
        from clearml_core.config.redact import redactor

        redactor.add(token)
        claims = token_claims(token)
        offered = _version(claims.get("api_version")) or OLDEST_API
        if offered < OLDEST_API:
            raise ControlPlaneError(
                f"the ClearML API server at {self.url} speaks API {offered[0]}.{offered[1]}; clearml-core needs "
                f"{OLDEST_API[0]}.{OLDEST_API[1]} or newer (ClearML server 0.16 or newer)"
            )
        chosen = min(offered, NEWEST_API)
        with self._lock:
            self._token = token
            self.api_version = f"{chosen[0]}.{chosen[1]}"
            self.server_version = str(claims.get("server_version") or "")
            self.extensions = _extensions(data)
        return token

    def speaks(self, version: tuple[int, int]) -> bool:
        """Whether the server's API is at least ``version`` (signing in first, to know)."""
        self._current_token()
        return (_version(self.api_version) or OLDEST_API) >= version

    def offers(self, extension: str) -> bool:
        """Whether the server announced ``extension`` (a call beyond ClearML's API) at sign-in."""
        self._current_token()
        return extension in self.extensions

    def withdraw(self, extension: str) -> None:
        """Stop using ``extension`` until the next sign-in: the server refused it after all (one
        behind the same address that no longer offers it)."""
        with self._lock:
            self.extensions = self.extensions - {extension}

    def _current_token(self) -> str:
        with self._lock:
            token = self._token
        return token or self.login()

    # -- calls --------------------------------------------------------------------------------
    def call(self, name: str, data: Mapping[str, Any] | None = None, *, worker: str | None = None) -> Any:
        """The ``data`` of a successful call; an error answer is an :class:`ApiFailure`."""
        return self._post(name, json.dumps(dict(data or {})).encode(), "application/json", worker)

    def call_lines(self, name: str, items: Sequence[Mapping[str, Any]], *, worker: str | None = None) -> Any:
        """A batch call (``events.add_batch``): one JSON object a line, as ClearML's clients send it."""
        body = "\n".join(json.dumps(dict(item)) for item in items).encode()
        return self._post(name, body, "application/json-lines", worker)

    def _post(self, name: str, body: bytes, content_type: str, worker: str | None) -> Any:
        for attempt in (0, 1):
            token = self._current_token()
            headers = {**self._headers(f"Bearer {token}", worker), "Content-Type": content_type}
            status, raw = self._send(f"/v{self.api_version}/{name}", body, headers)
            meta, payload = _envelope(raw)
            if status == 401 and attempt == 0:  # the token expired: sign in again, once
                with self._lock:
                    if self._token == token:
                        self._token = ""
                continue
            if status == 401:
                raise UserError(
                    f"the ClearML API server at {self.url} refused {name}: {_message(meta, status)}; "
                    f"check the access key and secret ({self._credentials_origin})"
                )
            if status != 200:
                code = int(meta.get("result_code") or status)
                raise ApiFailure(name, code, int(meta.get("result_subcode") or 0), _message(meta, status))
            return payload if payload is not None else {}
        raise AssertionError("unreachable")


def _extensions(data: Mapping[str, Any]) -> frozenset[str]:
    """The calls ``auth.login``'s reply announces (``clearml_core.extensions``); none when the
    field is absent (ClearML's own server) or not shaped so."""
    announced = data.get("clearml_core")
    names = announced.get("extensions") if isinstance(announced, dict) else None
    if not isinstance(names, list):
        return frozenset()
    return frozenset(name for name in names if isinstance(name, str))


def _envelope(body: bytes) -> tuple[dict[str, Any], Any]:
    try:
        answer = json.loads(body)
    except ValueError:
        text = body.decode(errors="replace").strip()
        return {"result_msg": text[:200] or "no answer"}, None
    if not isinstance(answer, dict):
        return {"result_msg": "an answer that is not ClearML's envelope"}, None
    meta = answer.get("meta")
    return (meta if isinstance(meta, dict) else {}), answer.get("data")


def _message(meta: Mapping[str, Any], status: int) -> str:
    return str(meta.get("result_msg") or http.client.responses.get(status, f"HTTP {status}"))


__all__ = ["NEWEST_API", "OLDEST_API", "ApiFailure", "ApiSession", "token_claims"]
