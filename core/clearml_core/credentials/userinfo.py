"""Credentials written into the URL itself: ``ftp://user:password@host/path``.

The one generic resolver the core ships: FTP and HDFS URLs carry their user (and for FTP often
the password) in the authority, and an explicit URL beats anything configured elsewhere, so it is
asked first (order 50). :mod:`clearml_core.builtin` registers it for those schemes
(``URL_USERINFO_SCHEMES``). Backend plugins add their own resolvers for everything else.
``sftp://`` is not among its schemes: there the user is only *who* logs in, while the key comes
from clearml.conf, the ssh agent or ``~/.ssh/config``, so the SFTP plugin brings its own chain.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from clearml_core.config.redact import mask_url
from clearml_core.credentials.chain import Credentials

if TYPE_CHECKING:
    from clearml_core.config import Config


def _userinfo(url: Any) -> tuple[str | None, str | None]:
    if isinstance(url, str):
        parts = urlsplit(url)
        username = unquote(parts.username) if parts.username else None
        password = unquote(parts.password) if parts.password else None
        return username, password
    return getattr(url, "user", None) or None, getattr(url, "password", None) or None


class UrlUserInfoResolver:
    """``user[:password]@`` in the URL's authority."""

    def resolve(self, url: Any, config: Config) -> Credentials | None:
        username, password = _userinfo(url)
        if username is None:
            return None
        values: dict[str, Any] = {"username": username}
        if password is not None:
            values["password"] = password
        return Credentials(values, f"URL {mask_url(str(url))}")

    def describe_miss(self, url: Any, config: Config) -> str:
        return "the URL has no user@ part"
