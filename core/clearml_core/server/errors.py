"""The errors the API answers with: ClearML server's result codes, subcodes and wording.

A client tells failures apart by ``meta.result_code`` (the HTTP status too) and
``meta.result_subcode``; the message follows ClearML server's form, ``Invalid task id: id=…``,
so a client prints the same line it would print against ClearML's own server.
"""

from __future__ import annotations

from typing import Any

KINDS: dict[str, tuple[int, int, str]] = {
    # 400: the request cannot be served as it is
    "not_supported": (400, 1, "Endpoint is not supported"),
    "invalid_version": (400, 2, "Request path has invalid version"),
    "invalid_headers": (400, 5, "Invalid headers"),
    "impersonation_error": (400, 6, "Impersonation error"),
    "invalid_id": (400, 10, "Invalid object id"),
    "missing_required_fields": (400, 11, "Missing required fields"),
    "validation_error": (400, 12, "Validation error"),
    "fields_value_error": (400, 16, "Invalid value for fields"),
    "batch_contains_no_items": (400, 17, "Batch request contains no items"),
    "fields_type_error": (400, 20, "Invalid type for fields"),
    "invalid_regex_error": (400, 21, "Malformed regular expression"),
    "invalid_task_id": (400, 101, "Invalid task id"),
    "invalid_task_status": (400, 110, "Invalid task status"),
    "task_in_progress": (400, 112, "Task in progress (invalid task status)"),
    "invalid_user": (400, 300, "Invalid user"),
    "invalid_user_id": (400, 301, "Invalid user id"),
    "invalid_project_id": (400, 401, "Invalid project id"),
    "project_has_tasks": (400, 402, "Project has associated tasks"),
    "invalid_project_name": (400, 407, "Invalid project name"),
    "invalid_queue_id": (400, 701, "Invalid queue id"),
    "queue_not_empty": (400, 702, "Queue is not empty"),
    "invalid_queue_or_task_not_queued": (400, 703, "Invalid queue id or task not in queue"),
    "task_already_queued": (400, 706, "Failed adding task to queue since task is already queued"),
    "no_default_queue": (400, 707, "No queue is tagged as the default queue for this company"),
    "expected_unique_data": (
        400,
        801,
        "Value combination already exists (unique field already contains this value)",
    ),
    "invalid_worker_id": (400, 1001, "Invalid worker id"),
    # 401: who is asking is not established
    "not_authorized": (401, 1, "Unauthorized (not authorized for endpoint)"),
    "bad_auth_type": (401, 10, "Unauthorized (bad authentication header type)"),
    "no_credentials": (401, 20, "Unauthorized (missing credentials)"),
    "bad_credentials": (401, 21, "Unauthorized (malformed credentials)"),
    "invalid_credentials": (401, 22, "Unauthorized (invalid credentials)"),
    "invalid_token": (401, 30, "Invalid token"),
    # 403: established, but not allowed
    "role_not_allowed": (403, 20, "Forbidden (not allowed for role)"),
    # beyond ClearML's table: limits this server enforces
    "payload_too_large": (413, 0, "Request body too large"),
    "too_many_requests": (429, 0, "Too many requests"),
    # 500
    "general_error": (500, 0, "General server error"),
    "not_implemented": (500, 9999, "Action is not yet implemented"),
}


class ApiError(Exception):
    """One failed call: ``code`` (also the HTTP status), ``subcode``, message and ``error_data``."""

    def __init__(self, code: int, subcode: int, message: str, data: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.subcode = subcode
        self.message = message
        self.data = data or {}


def api_error(kind: str, extra: str | None = None, **fields: Any) -> ApiError:
    """The error ``kind`` of :data:`KINDS`, worded as ClearML server words it:
    ``Default message (extra): field=value, …``."""
    code, subcode, message = KINDS[kind]
    if extra:
        message += f" ({extra})"
    if fields:
        message += ": " + ", ".join(f"{key}={_shown(value)}" for key, value in fields.items())
    return ApiError(code, subcode, message, {key: _jsonable(value) for key, value in fields.items()})


def _shown(value: Any) -> str:
    if isinstance(value, (list, tuple, set)):
        return "(" + ", ".join(str(v) for v in value) + ")"
    return str(value)


def _jsonable(value: Any) -> Any:
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple, set)):
        return [_jsonable(v) for v in value]
    return str(value)


__all__ = ["KINDS", "ApiError", "api_error"]
