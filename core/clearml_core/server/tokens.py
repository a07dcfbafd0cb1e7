"""Session tokens: JSON Web Tokens signed with HMAC-SHA256, as ClearML server issues them.

ClearML's clients decode the token they get from ``auth.login`` (without checking the signature)
to learn the server's API version, so its payload carries what ClearML server's does:
``identity`` (user, company, role, names), ``iat``/``exp``, ``env``, ``api_version``,
``server_version``, ``server_build`` and ``feature_set``. The file server checks tokens with the
same secret, without asking the API server.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from typing import Any

_HEADER = {"alg": "HS256", "typ": "JWT"}


class TokenError(ValueError):
    """The token is malformed, forged or expired; the message says which."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def encode(payload: Mapping[str, Any], secret: bytes) -> str:
    """``payload`` as a signed token."""
    head = _b64(json.dumps(_HEADER, separators=(",", ":")).encode())
    body = _b64(json.dumps(dict(payload), separators=(",", ":")).encode())
    signature = hmac.digest(secret, f"{head}.{body}".encode("ascii"), hashlib.sha256)
    return f"{head}.{body}.{_b64(signature)}"


def decode(token: str, secret: bytes, *, now: float | None = None) -> dict[str, Any]:
    """The payload of a token this server signed and that has not expired, else :class:`TokenError`."""
    parts = token.split(".")
    if len(parts) != 3:
        raise TokenError("not a token")
    head, body, signature = parts
    expected = hmac.digest(secret, f"{head}.{body}".encode("ascii", "replace"), hashlib.sha256)
    try:
        given = _unb64(signature)
    except ValueError:
        raise TokenError("malformed signature") from None
    if not hmac.compare_digest(expected, given):
        raise TokenError("signature does not match")
    try:
        header = json.loads(_unb64(head))
        payload = json.loads(_unb64(body))
    except ValueError:
        raise TokenError("malformed token") from None
    if not isinstance(header, dict) or header.get("alg") != "HS256" or not isinstance(payload, dict):
        raise TokenError("malformed token")
    expires = payload.get("exp")
    if isinstance(expires, (int, float)) and (time.time() if now is None else now) >= expires:
        raise TokenError("token expired")
    return payload


__all__ = ["TokenError", "decode", "encode"]
