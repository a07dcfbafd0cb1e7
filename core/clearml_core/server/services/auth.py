"""``auth.*``: sign-in (session tokens and the browser cookie) and access keys."""

from __future__ import annotations

import logging
from typing import Any

from clearml_core.server.endpoints import Call, endpoint
from clearml_core.server.errors import api_error
from clearml_core.server.taskview import iso

log = logging.getLogger("clearml_core.server.auth")


@endpoint("auth.login")
def login(call: Call) -> dict[str, Any]:
    """A session token for the caller (who signed in with Basic credentials, or holds a token),
    and the calls this server offers beyond ClearML's API (``clearml_core.extensions``, see
    :attr:`~clearml_core.server.settings.ServerSettings.extensions`): clearml-core's clients learn
    there what they may use, and ClearML's own clients ignore the field."""
    expiration = call.data.get("expiration_sec")
    if expiration is not None and not isinstance(expiration, int):
        raise api_error("fields_type_error", "expiration_sec must be an integer", field="expiration_sec")
    token = call.ctx.auth.issue_token(call.user, expiration)
    call.set_cookies.append(call.ctx.settings.cookie.header(token))
    return {"token": token, "clearml_core": {"extensions": list(call.ctx.settings.extensions)}}


@endpoint("auth.logout", min_version="2.2")
def logout(call: Call) -> None:
    call.set_cookies.append(call.ctx.settings.cookie.header(""))


@endpoint("auth.create_credentials")
def create_credentials(call: Call) -> dict[str, Any]:
    label = call.get_str("label")
    access_key, secret = call.ctx.accounts.create_key(call.user.user, label=label)
    log.info("access key %s created for user %s (%s)", access_key, call.user.user_name, call.user.user)
    return {"credentials": {"access_key": access_key, "secret_key": secret, "label": label or None}}


@endpoint("auth.get_credentials")
def get_credentials(call: Call) -> dict[str, Any]:
    """The caller's access keys; never a secret (want one? make a new key)."""
    return {
        "credentials": [
            {
                "access_key": key.access_key,
                "label": key.label or None,
                "last_used": iso(key.last_used),
                "last_used_from": key.last_used_from or None,
            }
            for key in call.ctx.accounts.keys_of(call.user.user)
        ]
    }


@endpoint("auth.revoke_credentials")
def revoke_credentials(call: Call) -> dict[str, Any]:
    access_key = call.get_str("access_key") or call.get_str("key_id")
    if not access_key:
        raise api_error("missing_required_fields", fields=["access_key"])
    if not call.ctx.accounts.revoke_key(call.user.user, access_key):
        raise api_error("invalid_user", "invalid user or invalid access key", access_key=access_key)
    log.info("access key %s revoked by user %s (%s)", access_key, call.user.user_name, call.user.user)
    return {"revoked": 1}


@endpoint("auth.fixed_users_mode", authorize=False)
def fixed_users_mode(call: Call) -> dict[str, Any]:
    return {
        "enabled": call.ctx.settings.fixed_users_enabled,
        "guest": {"enabled": False},
        "server_errors": {},
    }


@endpoint("auth.validate_token")
def validate_token(call: Call) -> dict[str, Any]:
    token = call.get_str("token")
    try:
        identity = call.ctx.auth.from_token(token)
    except Exception as error:  # an invalid token is an answer here, not a failure
        return {"valid": False, "msg": str(error)}
    return {"valid": True, "user": identity.user, "company": identity.company}
