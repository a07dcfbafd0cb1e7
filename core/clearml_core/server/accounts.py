"""Users and access keys, kept as documents in the control plane so every server process shares them.

An access key is ClearML's pair: a public ``access_key`` (30 letters and digits) and a
``secret_key`` shown once, when it is made; only a salted PBKDF2 digest of the secret is kept,
so the store never holds a secret. The token-signing secret (``secure.auth.token_secret``, made
at random when not configured) is kept here too, so tokens one server process signs are good at
every other.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from clearml_core.controlplane import ControlPlane

USERS = "server.users"
KEYS = "server.credentials"
SERVER = "server.settings"
DIGEST_ITERATIONS = 20_000
"""PBKDF2 rounds per secret check: a secret the server made cannot be guessed anyway, and a
configured one (CLEARML_API_SECRET_KEY) is no longer cheap to try offline."""

DEFAULT_USER = "default"
DEFAULT_USER_NAME = "Default User"


@dataclass(frozen=True)
class AccessKey:
    """One access key as listed (never with its secret)."""

    access_key: str
    user: str
    created: float
    last_used: float | None = None
    last_used_from: str = ""
    label: str = ""


def new_access_key() -> str:
    alphabet = string.ascii_uppercase + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(30))


def new_secret() -> str:
    return secrets.token_urlsafe(36)


def _digest(secret: str, salt: bytes) -> str:
    return hashlib.pbkdf2_hmac("sha256", secret.encode(), salt, DIGEST_ITERATIONS).hex()


class Accounts:
    """The users and access keys of one control plane."""

    def __init__(self, plane: ControlPlane, *, clock: Callable[[], float] = time.time) -> None:
        self.plane = plane
        self.clock = clock

    # -- users -------------------------------------------------------------------------------
    def ensure_user(self, user_id: str, name: str, *, role: str = "user") -> dict[str, Any]:
        """The user's record, made on first sight (fixed users, names signed in without them)."""
        found = self.plane.get_document(USERS, user_id)
        if found is not None:
            return found
        record = {"name": name, "role": role, "created": self.clock()}
        self.plane.put_document(USERS, user_id, record, only_new=True)
        return self.plane.get_document(USERS, user_id) or record

    def get_user(self, user_id: str) -> dict[str, Any] | None:
        return self.plane.get_document(USERS, user_id)

    def users(self) -> dict[str, dict[str, Any]]:
        return self.plane.list_documents(USERS)

    # -- access keys -------------------------------------------------------------------------
    def create_key(self, user_id: str, *, label: str = "") -> tuple[str, str]:
        """A new access key of ``user_id``: (access_key, secret_key). The secret is not kept."""
        while True:
            access_key, secret = new_access_key(), new_secret()
            if self._store_key(access_key, secret, user_id, label, only_new=True):
                return access_key, secret

    def preset_key(self, access_key: str, secret: str, user_id: str, *, label: str = "") -> None:
        """Register a key pair chosen outside (``CLEARML_API_ACCESS_KEY`` / ``_SECRET_KEY``);
        an existing key of that name gets this secret and owner."""
        existing = self.plane.get_document(KEYS, access_key)
        if existing is not None and existing.get("user") == user_id and self._matches(existing, secret):
            return
        self._store_key(access_key, secret, user_id, label, only_new=False)

    def _store_key(self, access_key: str, secret: str, user_id: str, label: str, *, only_new: bool) -> bool:
        salt = secrets.token_bytes(16)
        record = {
            "user": user_id,
            "salt": salt.hex(),
            "digest": _digest(secret, salt),
            "created": self.clock(),
            "label": label,
        }
        return self.plane.put_document(KEYS, access_key, record, only_new=only_new)

    @staticmethod
    def _matches(record: dict[str, Any], secret: str) -> bool:
        try:
            salt = bytes.fromhex(str(record.get("salt", "")))
        except ValueError:
            return False
        return hmac.compare_digest(_digest(secret, salt), str(record.get("digest", "")))

    def verify_key(self, access_key: str, secret: str, *, used_from: str = "") -> str | None:
        """The owner of the key when ``secret`` is its secret, else None."""
        record = self.plane.get_document(KEYS, access_key) if access_key else None
        if record is None or not self._matches(record, secret):
            return None
        record["last_used"] = self.clock()
        record["last_used_from"] = used_from
        self.plane.put_document(KEYS, access_key, record)
        return str(record.get("user") or "")

    def keys_of(self, user_id: str) -> list[AccessKey]:
        return [
            AccessKey(
                access_key=key,
                user=str(record.get("user")),
                created=float(record.get("created") or 0),
                last_used=record.get("last_used"),
                last_used_from=str(record.get("last_used_from") or ""),
                label=str(record.get("label") or ""),
            )
            for key, record in self.plane.list_documents(KEYS).items()
            if record.get("user") == user_id
        ]

    def all_keys(self) -> list[AccessKey]:
        users = {record.get("user") for record in self.plane.list_documents(KEYS).values()}
        return [key for user in sorted(str(u) for u in users) for key in self.keys_of(user)]

    def revoke_key(self, user_id: str | None, access_key: str) -> bool:
        """Remove ``access_key``; only when it is ``user_id``'s (None: whoever's, the CLI)."""
        record = self.plane.get_document(KEYS, access_key)
        if record is None or (user_id is not None and record.get("user") != user_id):
            return False
        return self.plane.delete_document(KEYS, access_key)

    # -- the token secret --------------------------------------------------------------------
    def token_secret(self, configured: str = "") -> bytes:
        """``secure.auth.token_secret``, or the random one every process of this store shares."""
        if configured:
            return configured.encode()
        self.plane.put_document(SERVER, "token_secret", {"value": secrets.token_hex(32)}, only_new=True)
        stored = self.plane.get_document(SERVER, "token_secret") or {}
        return str(stored["value"]).encode()


__all__ = ["DEFAULT_USER", "DEFAULT_USER_NAME", "AccessKey", "Accounts", "new_access_key", "new_secret"]
