"""Fixed users: the accounts ``apiserver.auth.fixed_users`` lists, as ClearML server reads them.

::

    auth.fixed_users {
        enabled: true
        pass_hashed: false            # true: password is base64(bcrypt hash)
        users: [{username: "jane", password: "…", name: "Jane Doe"}]
    }

A user's id is the MD5 of ``company:username``, as in ClearML server, so tasks keep their owner
across restarts and server processes. With ``pass_hashed`` the password is checked with bcrypt
(the ``clearml-core[server]`` extra); every hash is checked to be base64 of a bcrypt hash when the
server starts, so a mistake is found then rather than at a sign-in.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from clearml_core.errors import ConfigError, UserError

USERS_KEY = "apiserver.auth.fixed_users.users"
BCRYPT_HINT = "pip install 'clearml-core[server]'"
MAKE_HASH = (
    "python -c 'import base64, bcrypt, getpass; "
    "print(base64.b64encode(bcrypt.hashpw(getpass.getpass().encode(), bcrypt.gensalt())).decode())'"
)


def user_id(company: str, username: str) -> str:
    """ClearML server's id of a named user of a company."""
    return hashlib.md5(f"{company}:{username}".encode()).hexdigest()  # noqa: S324  (an id, not a secret)


@dataclass(frozen=True)
class FixedUser:
    """One fixed user; ``password`` is the text of the configuration (a hash with ``pass_hashed``)."""

    username: str
    password: str
    name: str
    id: str

    def __repr__(self) -> str:
        return f"FixedUser(username={self.username!r}, name={self.name!r})"


def _bcrypt() -> Any:
    try:
        import bcrypt
    except ImportError:
        raise UserError(
            f"apiserver.auth.fixed_users.pass_hashed is true, which needs bcrypt: {BCRYPT_HINT}"
        ) from None
    return bcrypt


def _hash_bytes(text: str) -> bytes | None:
    """The bcrypt hash inside base64 ``text``, or None when it is not one."""
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        return None
    if len(raw) != 60 or raw[:4] not in (b"$2a$", b"$2b$", b"$2y$"):
        return None
    return raw


def load_fixed_users(
    entries: Sequence[Any], *, hashed: bool, company: str, origin: str
) -> tuple[FixedUser, ...]:
    """The users of ``apiserver.auth.fixed_users.users``, checked; mistakes are a ConfigError.

    The error names the user, never the password or hash.
    """
    users: list[FixedUser] = []
    seen: set[str] = set()
    if hashed and entries:
        _bcrypt()
    for index, entry in enumerate(entries):
        where = f"{origin}: {USERS_KEY}[{index}]"
        if not isinstance(entry, dict):
            raise ConfigError(f"{where} must be an object {{username: …, password: …, name: …}}")
        username = str(entry.get("username") or "").strip()
        password = entry.get("password")
        if not username:
            raise ConfigError(f"{where} has no username")
        if not isinstance(password, str) or not password:
            raise ConfigError(f"{where} ({username}) has no password")
        if username in seen:
            raise ConfigError(f"{where}: the user name {username!r} is listed twice")
        seen.add(username)
        if hashed and _hash_bytes(password) is None:
            raise ConfigError(
                f"{where} ({username}): the password is not the base64 of a bcrypt hash, which "
                f"apiserver.auth.fixed_users.pass_hashed = true asks for; make one with {MAKE_HASH}"
            )
        users.append(
            FixedUser(username, password, str(entry.get("name") or username), user_id(company, username))
        )
    return tuple(users)


def check_password(user: FixedUser, given: str, *, hashed: bool) -> bool:
    """Whether ``given`` is the user's password (constant time)."""
    if not hashed:
        return hmac.compare_digest(given.encode(), user.password.encode())
    stored = _hash_bytes(user.password)
    if stored is None:
        return False
    # bcrypt reads 72 bytes; bcrypt 5 refuses more, older ones (ClearML server's) cut them off
    return bool(_bcrypt().checkpw(given.encode()[:72], stored))


__all__ = ["FixedUser", "check_password", "load_fixed_users", "user_id"]
