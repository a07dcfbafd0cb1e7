"""Who is calling: session tokens, access keys, fixed users, and sign-in throttling.

A call proves who it is with ``Authorization: Bearer <token>`` (what clients send after
``auth.login``), ``Authorization: Basic base64(key:secret)`` (what they send to ``auth.login``), or
the session cookie a browser got from ``auth.login``. Basic credentials are an access key and its
secret, or a fixed user's name and password. Without fixed users, ``auth.login`` also signs a
browser in by a user name alone (``name:`` with an empty password), as ClearML server's web
login without fixed users does; nothing else is served without credentials.
"""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Callable, Mapping

from clearml_core.server import tokens
from clearml_core.server.accounts import Accounts
from clearml_core.server.errors import ApiError, api_error
from clearml_core.server.fixed_users import FixedUser, check_password, user_id
from clearml_core.server.identity import Identity
from clearml_core.server.ratelimit import LoginLimiter
from clearml_core.server.settings import API_VERSION, SERVER_VERSION, ServerSettings

VERIFIED_TOKENS = 4096
"""How many checked tokens the server remembers (all of them are forgotten when it is full)."""


class Authenticator:
    """Turns a call's credentials into an :class:`Identity`, and identities into tokens."""

    def __init__(
        self,
        settings: ServerSettings,
        accounts: Accounts,
        secret: bytes,
        *,
        limiter: LoginLimiter | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.accounts = accounts
        self._secret = secret
        self.limiter = limiter or LoginLimiter(
            settings.login_max_failures, settings.login_window_sec, settings.login_lockout_sec
        )
        self.clock = clock
        self._fixed = {user.username: user for user in settings.fixed_users}
        self._verified: dict[str, tuple[Identity, float]] = {}

    # -- identities --------------------------------------------------------------------------
    def identity(self, user: str, name: str = "") -> Identity:
        if not name:
            record = self.accounts.get_user(user) or {}
            name = str(record.get("name") or user)
        return Identity(
            user=user,
            company=self.settings.company_id,
            role="user",
            user_name=name,
            company_name=self.settings.company_name,
        )

    def named_user(self, username: str) -> Identity:
        """The identity of a user known by name (a fixed user, or one signed in by name)."""
        fixed = self._fixed.get(username)
        name = fixed.name if fixed is not None else username
        uid = user_id(self.settings.company_id, username)
        self.accounts.ensure_user(uid, name)
        return self.identity(uid, name)

    def fixed_user(self, username: str) -> FixedUser | None:
        return self._fixed.get(username) if self.settings.fixed_users_enabled else None

    # -- tokens ------------------------------------------------------------------------------
    def issue_token(self, identity: Identity, expiration_sec: int | None = None) -> str:
        lifetime = min(
            expiration_sec or self.settings.token_expiration_sec, self.settings.token_max_expiration_sec
        )
        now = int(self.clock())
        payload = {
            "identity": identity.to_dict(),
            "iat": now,
            "exp": now + int(lifetime),
            "env": "clearml-core",
            "api_version": API_VERSION,
            "server_version": SERVER_VERSION,
            "server_build": "clearml-core",
            "feature_set": "basic",
        }
        return tokens.encode(payload, self._secret)

    def from_token(self, token: str) -> Identity:
        """The identity a token carries. Tokens are stateless (nothing revokes one before it
        expires), so each is checked once and then remembered until it expires: an agent sends the
        same one with every call."""
        now = self.clock()
        known = self._verified.get(token)
        if known is not None and now < known[1]:
            return known[0]
        try:
            payload = tokens.decode(token, self._secret, now=now)
            identity = Identity.from_dict(payload.get("identity"))
        except (tokens.TokenError, ValueError) as error:
            raise api_error("invalid_token", str(error)) from None
        expires = payload.get("exp")
        if isinstance(expires, (int, float)):
            if len(self._verified) >= VERIFIED_TOKENS:
                self._verified.clear()
            self._verified[token] = (identity, float(expires))
        return identity

    # -- credentials -------------------------------------------------------------------------
    def authenticate(
        self,
        headers: Mapping[str, str],
        cookies: Mapping[str, str],
        address: str,
        *,
        login: bool = False,
    ) -> Identity:
        """The caller's identity, or the :class:`ApiError` (401) a client shows."""
        header = headers.get("authorization", "").strip()
        if header:
            scheme, _, value = header.partition(" ")
            if scheme.lower() == "bearer":
                return self.from_token(value.strip())
            if scheme.lower() == "basic":
                return self.from_basic(value.strip(), address, login=login)
            raise api_error("bad_auth_type")
        cookie = cookies.get(self.settings.cookie.name)
        if cookie:
            return self.from_token(cookie)
        raise api_error("no_credentials")

    def from_basic(self, value: str, address: str, *, login: bool) -> Identity:
        try:
            key, _, secret = (
                base64.b64decode(value.encode("ascii"), validate=True).decode("utf-8").partition(":")
            )
        except (binascii.Error, UnicodeError, ValueError):
            raise api_error("bad_credentials") from None
        wait = self.limiter.locked_for(address)
        if wait > 0:
            raise ApiError(
                429,
                0,
                f"Too many failed sign-ins from {address}; try again in {int(wait) + 1} s",
                {"retry_after": int(wait) + 1},
            )
        identity = self._check(key, secret, address, login=login)
        if identity is None:
            self.limiter.failed(address, key)
            raise api_error("invalid_credentials", "bad username, password, access key or secret")
        self.limiter.succeeded(address)
        return identity

    def _check(self, key: str, secret: str, address: str, *, login: bool) -> Identity | None:
        if not key:
            return None
        owner = self.accounts.verify_key(key, secret, used_from=address) if secret else None
        if owner:
            return self.identity(owner)
        if self.settings.fixed_users_enabled:
            fixed = self._fixed.get(key)
            if (
                fixed is not None
                and secret
                and check_password(fixed, secret, hashed=self.settings.pass_hashed)
            ):
                return self.named_user(key)
            return None
        if login and not secret:
            return self.named_user(key)  # the web page's sign-in by name, without fixed users
        return None


__all__ = ["Authenticator"]
