"""Repository URLs: parsing every form git takes, the cache key, and the ssh ⇄ https rewrites.

Git accepts ``https://host/org/repo.git``, ``ssh://user@host:2222/org/repo.git``, the scp-like
``user@host:org/repo.git``, ``git://host/repo``, ``file:///path`` and plain local paths.
:func:`parse_repo_url` turns each into a :class:`RepoUrl`; :meth:`RepoUrl.cache_key` names the
repository whatever the form (``git@github.com:org/repo.git`` and ``https://github.com/org/repo``
share one mirror in the VCS cache); :func:`rewrite_url` applies ``agent.translate_ssh`` and
``agent.force_git_ssh_protocol``.

Passwords never leave this module inside a URL: :meth:`RepoUrl.public` drops them and the
checkout passes them to git through a credential helper instead.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

_SCHEME = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://")
# git's rule: "host:path" is scp-like when a colon comes before the first slash
_SCP = re.compile(r"^(?:(?P<user>[^@/]+)@)?(?P<host>\[[^\]]+\]|[^:/\[\]]+):(?P<path>[^/].*|/.*)$")
_SSH_SCHEMES = {"ssh", "git+ssh", "ssh+git"}


@dataclass(frozen=True)
class RepoUrl:
    """One repository address, taken apart. ``path`` of a network URL has no leading slash for
    the scp-like form (it is relative to the server's home of ``user``) and one otherwise."""

    scheme: str  # https, http, ssh, git, file
    host: str = ""
    port: int | None = None
    path: str = ""
    user: str = ""
    password: str = ""
    scp_like: bool = False

    @property
    def is_ssh(self) -> bool:
        return self.scheme == "ssh"

    @property
    def is_http(self) -> bool:
        return self.scheme in ("http", "https")

    @property
    def is_local(self) -> bool:
        return self.scheme == "file"

    @property
    def host_port(self) -> str:
        return f"{self.host}:{self.port}" if self.port else self.host

    def _render(self, *, password: str | None) -> str:
        if self.is_local:
            return Path(self.path).as_uri() if self.path.startswith("/") else f"file://{self.path}"
        userinfo = ""
        if self.user:
            userinfo = quote(self.user, safe="")
            if password:
                userinfo += ":" + quote(password, safe="")
            userinfo += "@"
        if self.scp_like:
            return f"{userinfo}{self.host}:{self.path}"
        path = self.path if self.path.startswith("/") else "/" + self.path
        return f"{self.scheme}://{userinfo}{self.host_port}{path}"

    def public(self) -> str:
        """The URL without its password: what logs, records and git's command line see."""
        return self._render(password=None)

    def without_credentials(self) -> RepoUrl:
        """The same address with neither user nor password (http) or the password dropped (ssh,
        where the user is part of the address)."""
        return replace(self, password="", user=self.user if self.is_ssh else "")

    def __str__(self) -> str:
        return self.public()

    def cache_key(self) -> str:
        """What identifies the repository: host (and port when given) and path, lower-cased host,
        without scheme, user, trailing slash or ``.git``. Local repositories: ``file:`` + path."""
        if self.is_local:
            return "file:" + self.path.rstrip("/")
        path = self.path.strip("/")
        if path.endswith(".git"):
            path = path[: -len(".git")]
        return f"{self.host_port.lower()}/{path.rstrip('/')}"

    def cache_dir_name(self) -> str:
        """A readable, collision-safe folder name for the key: ``github.com_org_repo.1a2b3c4d5e``."""
        key = self.cache_key()
        readable = re.sub(r"[^A-Za-z0-9._-]+", "_", key.removeprefix("file:")).strip("_.")[-80:] or "repo"
        digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:10]
        return f"{readable}.{digest}"


def looks_like_url(text: str) -> bool:
    """Whether ``text`` is a URL (any ``scheme://`` or the scp-like ``user@host:path``) rather
    than a local path."""
    return bool(_SCHEME.match(text)) or (bool(_SCP.match(text)) and "@" in text.split(":", 1)[0])


def parse_repo_url(text: str) -> RepoUrl:
    """Take a repository address apart; a plain path becomes a ``file`` URL of its absolute path."""
    text = text.strip()
    match = _SCHEME.match(text)
    if match:
        scheme = match.group("scheme").lower()
        parts = urlsplit(text)
        if scheme == "file":
            return RepoUrl("file", path=unquote(parts.path) or "/")
        scheme = "ssh" if scheme in _SSH_SCHEMES else scheme
        try:
            port = parts.port
        except ValueError:
            port = None
        host = parts.hostname or ""
        if parts.netloc.split("@")[-1].startswith("["):  # keep IPv6 literals bracketed
            host = f"[{host}]"
        return RepoUrl(
            scheme,
            host=host,
            port=port,
            path=unquote(parts.path),
            user=unquote(parts.username or ""),
            password=unquote(parts.password or ""),
        )
    scp = _SCP.match(text)
    if scp and not re.match(r"^[A-Za-z]:[\\/]", text) and not Path(text).exists():
        return RepoUrl(
            "ssh", host=scp.group("host"), path=scp.group("path"), user=scp.group("user") or "", scp_like=True
        )
    return RepoUrl("file", path=str(Path(text).expanduser().resolve()))


def rewrite_url(
    url: RepoUrl,
    *,
    has_credentials: bool,
    translate_ssh: bool = True,
    replacement_scheme: str = "https",
    force_ssh: bool = False,
    ssh_user: str | None = None,
    ssh_port: int | None = None,
) -> RepoUrl:
    """The URL git is given, as clearml-agent rewrites it.

    * ``force_ssh`` (``agent.force_git_ssh_protocol``): an http(s) URL becomes
      ``ssh://{ssh_user or git}@host[:ssh_port]/path``; ssh URLs are kept.
    * otherwise ``translate_ssh`` with credentials for the host: an ssh URL becomes
      ``{replacement_scheme}://host/path`` (the ssh user and port are dropped), so the
      configured user and password can be used.
    """
    if force_ssh:
        if url.is_http:
            path = url.path if url.path.startswith("/") else "/" + url.path
            return RepoUrl("ssh", host=url.host, port=ssh_port, path=path, user=ssh_user or "git")
        return url
    if translate_ssh and has_credentials and url.is_ssh:
        path = url.path if url.path.startswith("/") else "/" + url.path
        return RepoUrl((replacement_scheme or "https").lower(), host=url.host, path=path)
    return url


__all__ = ["RepoUrl", "looks_like_url", "parse_repo_url", "rewrite_url"]
