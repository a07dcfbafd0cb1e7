"""The API: ``/<service>.<action>`` and ``/v<version>/<service>.<action>``, as ClearML server answers it.

A call's body is a JSON object (``application/json-lines`` for batches: one object a line), sent
with GET, POST or PUT; query parameters fill in when the body is empty. Every answer is the
envelope ClearML's clients read::

    {"meta": {"id", "trx", "endpoint": {"name", "requested_version", "actual_version"},
              "result_code", "result_subcode", "result_msg", "error_stack", "error_data"},
     "data": {…}}

with the HTTP status equal to ``result_code``. Versions are negotiated as ClearML server does: a
call names the version it speaks (none: the newest), and the newest endpoint whose minimum
version is not above it serves it; an endpoint that has none low enough is a 404, a malformed
version a 400. Services register their endpoints with
:func:`~clearml_core.server.endpoints.endpoint`; :class:`ApiApplication` serves the API over HTTP.
"""

from __future__ import annotations

import json
import logging
import re
import time
import traceback
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from http.cookies import CookieError, SimpleCookie
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from clearml_core.controlplane import (
    ControlPlaneError,
    InvalidTransitionError,
    QueueNotFoundError,
    TaskNotFoundError,
    WorkerNotFoundError,
)
from clearml_core.errors import UserError
from clearml_core.server.endpoints import Call, Version, parse_version, resolve, show_version
from clearml_core.server.errors import ApiError, api_error
from clearml_core.server.httpd import HttpRequest, HttpResponse
from clearml_core.server.settings import API_VERSION

if TYPE_CHECKING:
    from clearml_core.server.context import ServerContext

log = logging.getLogger("clearml_core.server.api")

_PATH = re.compile(r"^/?(v(?P<version>[^/]*)/)?(?P<name>[a-zA-Z_]\w+\.[a-zA-Z_]\w+)/?$")
MAX_VERSION: Version = parse_version(API_VERSION)


@dataclass
class Reply:
    status: int
    body: bytes
    headers: list[tuple[str, str]]


def _cookies(header: str) -> dict[str, str]:
    if not header:
        return {}
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(header)
    except CookieError:
        return {}
    return {key: morsel.value for key, morsel in jar.items()}


def _loads_body(body: bytes, content_type: str) -> tuple[dict[str, Any], list[dict[str, Any]] | None]:
    if content_type.split(";")[0].strip().lower() == "application/json-lines":
        items: list[dict[str, Any]] = []
        for index, line in enumerate(body.splitlines()):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except ValueError as error:
                raise api_error(
                    "validation_error", f"malformed JSON in batch item #{index}: {error}"
                ) from None
            if not isinstance(item, dict):
                raise api_error(
                    "validation_error", f"json lines must contain objects, found: {type(item).__name__}"
                )
            items.append(item)
        return {}, items
    if not body.strip():
        return {}, None
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as error:
        raise api_error("validation_error", f"malformed JSON in the request body: {error}") from None
    if not isinstance(data, dict):
        raise api_error(
            "validation_error", f"the request body must be a JSON object, not {type(data).__name__}"
        )
    return data, None


def _query_values(query: str) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for key, text in parse_qsl(query, keep_blank_values=True):
        value: Any = text
        if text.replace(".", "", 1).isdigit():
            value = float(text) if "." in text else int(text)
        elif text.lower() in ("true", "false"):
            value = text.lower() == "true"
        values[key] = value
    return values


class Api:
    """Dispatches HTTP requests to the registered endpoints and wraps their answers."""

    def __init__(self, ctx: ServerContext) -> None:
        from clearml_core.server import services  # noqa: F401  (registers the endpoints)

        self.ctx = ctx

    def handle(
        self, method: str, path: str, query: str, headers: Mapping[str, str], body: bytes, address: str
    ) -> Reply:
        started = time.perf_counter()
        call_id = uuid.uuid4().hex
        name, requested, actual = "", None, None
        call: Call | None = None
        try:
            if method == "OPTIONS":
                return Reply(200, b"", [])
            match = _PATH.match(path)
            if match is None:
                raise ApiError(400, 0, f"Invalid request path {path}")
            name = match.group("name")
            requested = self._version(match.group("version"))
            found = resolve(name, requested)
            if found is None:
                raise ApiError(
                    404, 0, f"Unable to find endpoint for name {name} and version {show_version(requested)}"
                )
            actual = found.min_version
            data, batch = _loads_body(body, headers.get("content-type", ""))
            if not data and batch is None and query:
                data = _query_values(query)
            elif query and name == "auth.login":
                data.update(_query_values(query))
            call = Call(self.ctx, name, requested, data, headers, address, batch=batch)
            if found.authorize:
                self._authorize(call, headers)
            result = found.handler(call)
            reply = self._envelope(call_id, name, requested, actual, 200, 0, "OK", result or {}, None)
            status = 200
        except Exception as error:  # every failure becomes an envelope the client can read
            status, subcode, message, data_out, stack = self._failure(error, name)
            reply = self._envelope(
                call_id, name, requested, actual, status, subcode, message, {}, stack, data_out
            )
            elapsed = (time.perf_counter() - started) * 1000
            level = logging.ERROR if status >= 500 else logging.INFO
            log.log(level, "Returned %d for %s in %.0fms, msg=%s", status, name or path, elapsed, message)
        else:
            if log.isEnabledFor(logging.DEBUG):
                elapsed = (time.perf_counter() - started) * 1000
                log.debug("Returned 200 for %s in %.1fms", name, elapsed)
        headers_out = [("Content-Type", "application/json")]
        if call is not None:
            headers_out.extend(("Set-Cookie", cookie) for cookie in call.set_cookies)
        return Reply(status, reply, headers_out)

    def error_reply(self, error: ApiError) -> Reply:
        """The envelope of a call refused before it was read (a body over the size limit)."""
        log.info("Returned %d, msg=%s", error.code, error.message)
        body = self._envelope(
            uuid.uuid4().hex, "", None, None, error.code, error.subcode, error.message, {}, None
        )
        return Reply(error.code, body, [("Content-Type", "application/json")])

    def _version(self, text: str | None) -> Version:
        if text is None:
            return MAX_VERSION
        try:
            version = parse_version(text)
        except ValueError:
            raise api_error("invalid_version", version=text) from None
        if self.ctx.settings.check_max_version and version > MAX_VERSION:
            raise api_error(
                "invalid_version", f"max. supported version is {show_version(MAX_VERSION)}", version=text
            )
        return version

    def _authorize(self, call: Call, headers: Mapping[str, str]) -> None:
        if any(
            headers.get(f"x-{p}-{h}") for p in ("clearml", "trains") for h in ("impersonate-as", "act-as")
        ):
            raise api_error("impersonation_error", "this server does not let a caller act as another user")
        cookies = _cookies(headers.get("cookie", ""))
        call.identity = self.ctx.auth.authenticate(
            headers, cookies, call.address, login=call.name == "auth.login"
        )

    def _failure(self, error: Exception, name: str) -> tuple[int, int, str, dict[str, Any], str | None]:
        if isinstance(error, ApiError):
            return error.code, error.subcode, error.message, error.data, None
        mapped = _translate(error)
        if mapped is not None:
            return mapped.code, mapped.subcode, mapped.message, mapped.data, None
        log.error("%s failed", name or "request", exc_info=error)
        stack = traceback.format_exc() if self.ctx.settings.return_stack else None
        return 500, 0, f"General server error ({type(error).__name__}: {error})", {}, stack

    @staticmethod
    def _envelope(
        call_id: str,
        name: str,
        requested: Version | None,
        actual: Version | None,
        code: int,
        subcode: int,
        message: str,
        data: Any,
        stack: str | None,
        error_data: dict[str, Any] | None = None,
    ) -> bytes:
        envelope = {
            "meta": {
                "id": call_id,
                "trx": call_id,
                "endpoint": {
                    "name": name,
                    "requested_version": show_version(requested) if requested else None,
                    "actual_version": show_version(actual) if actual else None,
                },
                "result_code": code,
                "result_subcode": subcode,
                "result_msg": message,
                "error_stack": stack,
                "error_data": error_data or {},
            },
            "data": data,
        }
        return json.dumps(envelope, separators=(",", ":"), default=str).encode()


def _translate(error: Exception) -> ApiError | None:
    """The control plane's errors as ClearML server's."""
    if isinstance(error, TaskNotFoundError):
        return api_error("invalid_task_id", id=error.task_id)
    if isinstance(error, QueueNotFoundError):
        return api_error("invalid_queue_id", queue=error.queue)
    if isinstance(error, WorkerNotFoundError):
        return api_error("invalid_worker_id", worker=error.worker_id)
    if isinstance(error, InvalidTransitionError):
        return ApiError(400, 110, f"Invalid task status ({error})")
    if isinstance(error, ControlPlaneError):
        return ApiError(500, 102, f"Database is temporarily unavailable ({error})")
    if isinstance(error, UserError):
        return ApiError(400, 12, f"Validation error ({error})")
    return None


class ApiApplication:
    """The API role: ClearML's REST calls (:mod:`clearml_core.server.api`)."""

    name = "api server"

    def __init__(self, ctx: ServerContext, *, prefix: str = "") -> None:
        self.ctx = ctx
        self.api = Api(ctx)
        self.prefix = prefix

    def handle(self, request: HttpRequest) -> HttpResponse:
        limit = self.ctx.settings.max_request_bytes
        length = request.content_length
        if length is not None and length > limit:
            error = api_error(
                "payload_too_large", f"the limit is {limit} bytes (apiserver.max_request_size_mb)"
            )
            reply = self.api.error_reply(error)
            return HttpResponse(reply.status, reply.body, reply.headers)
        body = request.read_body(limit)
        path = request.raw_path
        if self.prefix and path.startswith(self.prefix):
            path = path[len(self.prefix) :]
        reply = self.api.handle(request.method, path, request.query, request.headers, body, request.address)
        return HttpResponse(reply.status, reply.body, reply.headers)


__all__ = ["Api", "ApiApplication", "Reply"]
