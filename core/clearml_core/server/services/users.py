"""``users.*``: who the caller is, and the users this server knows."""

from __future__ import annotations

from typing import Any

from clearml_core.server.endpoints import Call, endpoint
from clearml_core.server.errors import api_error
from clearml_core.server.taskview import iso


def _user(call: Call, user_id: str, record: dict[str, Any]) -> dict[str, Any]:
    settings = call.ctx.settings
    name = str(record.get("name") or user_id)
    return {
        "id": user_id,
        "name": name,
        "given_name": name.split(" ")[0],
        "family_name": " ".join(name.split(" ")[1:]),
        "company": {"id": settings.company_id, "name": settings.company_name},
        "role": record.get("role") or "user",
        "created": iso(record.get("created")),
    }


@endpoint("users.get_current_user")
def get_current_user(call: Call) -> dict[str, Any]:
    identity = call.user
    record = call.ctx.accounts.get_user(identity.user) or {"name": identity.user_name}
    return {"user": _user(call, identity.user, record), "getting_started": None, "settings": {}}


@endpoint("users.get_all")
def get_all(call: Call) -> dict[str, Any]:
    wanted = set(call.get_list("id"))
    return {
        "users": [
            _user(call, user_id, record)
            for user_id, record in call.ctx.accounts.users().items()
            if not wanted or user_id in wanted
        ]
    }


@endpoint("users.get_by_id")
def get_by_id(call: Call) -> dict[str, Any]:
    call.require("user")
    user_id = call.get_str("user")
    record = call.ctx.accounts.get_user(user_id)
    if record is None:
        raise api_error("invalid_user_id", id=user_id)
    return {"user": _user(call, user_id, record)}


@endpoint("users.get_preferences")
def get_preferences(call: Call) -> dict[str, Any]:
    return {"preferences": {}}
