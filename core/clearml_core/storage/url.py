"""One URL model for every storage location users write.

:func:`parse_url` turns any accepted form into a frozen :class:`StorageURL`; ``str()`` gives the
canonical form back (with the password masked), :meth:`StorageURL.reveal` the exact canonical
form including it. Three shapes share the type:

* **bucket URLs** — ``s3``, ``gs``/``gcs``, ``azure``, ``wasb(s)``, ``abfs(s)``: ``bucket`` (the
  S3/GCS bucket or Azure container) and ``path`` (the object key, no leading ``/``). S3-compatible
  endpoints and Azure accounts go in ``host``/``port``.
* **local paths** — ``file:///x``, plain and relative paths (made absolute), ``~``: scheme
  ``file``, ``path`` absolute.
* **host URLs** — ``http(s)``, ``ftp``, ``sftp``, ``hdfs`` and any other scheme: ``host``,
  ``port``, ``user``, ``password`` and an absolute ``path`` (plus ``query`` for HTTP).

Object keys are kept exactly as written — no percent-decoding, no folding of ``//`` (only leading
``/`` go) — as boto3, the Azure and GCS SDKs and ClearML treat them; only HTTP paths are
percent-decoded, because there the server decodes them, and file-system paths are normalised as
the system does.
A path ending in ``/`` names a folder, and that meaning survives every operation.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import quote, unquote

from clearml_core.errors import UserError

__all__ = [
    "BUCKET_SCHEMES",
    "InvalidURLError",
    "StorageURL",
    "parse_url",
]

MASK = "****"

BUCKET_SCHEMES = frozenset({"s3", "gs", "gcs", "azure", "wasb", "wasbs", "abfs", "abfss"})
"""Schemes whose first location component is a bucket / container and whose path is a key."""

_AZURE_SCHEMES = frozenset({"azure", "wasb", "wasbs", "abfs", "abfss"})
_HOST_REQUIRED = frozenset({"http", "https", "ftp", "sftp"})
_CASE_INSENSITIVE_HOSTS = frozenset({"http", "https", "ftp", "sftp", "hdfs", "webhdfs", "ssh"})
_DEFAULT_PORTS = {"http": 80, "https": 443}
_AZURE_BLOB_SUFFIX = ".blob.core.windows.net"

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_HOST = re.compile(r"^[A-Za-z0-9._~!$&'()*+,;=%-]+$")
_IPV4 = re.compile(r"^\d{1,3}(\.\d{1,3}){3}$")
_IPV6 = re.compile(r"^[0-9A-Fa-f:.]+(%[\w.-]+)?$")
_S3_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
# Hosted S3-compatible services whose endpoint names could otherwise pass for dotted bucket names.
_S3_ENDPOINT_SUFFIXES = (
    "amazonaws.com",
    "amazonaws.com.cn",
    "digitaloceanspaces.com",
    "wasabisys.com",
    "backblazeb2.com",
    "r2.cloudflarestorage.com",
    "storage.googleapis.com",
    "linodeobjects.com",
    "scw.cloud",
    "cloud-object-storage.appdomain.cloud",
)
_USERINFO_SAFE = "!$&'()*+,;=-._~"
_PATH_SAFE = "/!$&'()*+,;=:@-._~"


class InvalidURLError(UserError):
    """A storage URL that cannot be understood; the message says which part is wrong."""


def _mask_text(text: str) -> str:
    """``scheme://user:secret@host`` → ``scheme://user:****@host`` for error messages."""
    scheme, sep, rest = text.partition("://")
    if not sep:
        return text
    netloc, slash, path = rest.partition("/")
    userinfo, at, host = netloc.rpartition("@")
    if not at or ":" not in userinfo:
        return text
    user = userinfo.partition(":")[0]
    return f"{scheme}://{user}:{MASK}@{host}{slash}{path}"


def _collapse(path: str) -> str:
    return re.sub(r"/{2,}", "/", path)


def _is_ip(host: str) -> bool:
    """An IPv4 or IPv6 address literal (without importing ipaddress: this module loads on every URL)."""
    if ":" in host:
        return bool(_IPV6.match(host))
    return bool(_IPV4.match(host)) and all(int(part) < 256 for part in host.split("."))


@dataclass(frozen=True, repr=False)
class StorageURL:
    """A parsed storage location. Build one with :func:`parse_url`.

    ``path`` is the object key (no leading ``/``) for bucket schemes, else an absolute path.
    ``password`` is never shown by ``str()`` or ``repr()``; :meth:`reveal` includes it.
    """

    scheme: str
    path: str = ""
    bucket: str | None = None
    host: str | None = None
    port: int | None = None
    user: str | None = None
    password: str | None = field(default=None, compare=True)
    query: str = ""

    # -- shape ------------------------------------------------------------------------------
    @property
    def is_bucket(self) -> bool:
        """Object-store URL: ``bucket`` + key."""
        return self.scheme in BUCKET_SCHEMES

    @property
    def is_local(self) -> bool:
        return self.scheme == "file"

    @property
    def key(self) -> str:
        """The object key inside the bucket (bucket URLs), or the path without its leading ``/``."""
        return self.path.lstrip("/")

    @property
    def container(self) -> str | None:
        """The Azure container (the same field as ``bucket``)."""
        return self.bucket

    @property
    def account(self) -> str | None:
        """The Azure storage account: the first label of ``host``."""
        if self.scheme not in _AZURE_SCHEMES or not self.host:
            return None
        return self.host.split(".", 1)[0]

    @property
    def endpoint(self) -> str | None:
        """``host[:port]`` (an S3-compatible endpoint, an Azure account host, a server)."""
        if not self.host:
            return None
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}" if self.port is not None else host

    @property
    def is_folder(self) -> bool:
        """Whether the URL names a folder: its path ends with ``/`` or it is a root."""
        return self.path in ("", "/") or self.path.endswith("/")

    @property
    def name(self) -> str:
        """The last path segment, ignoring a trailing ``/`` (``""`` for a root, and for the empty
        segment that ends a key such as ``p//``)."""
        return self._trimmed.rpartition("/")[2]

    @property
    def _trimmed(self) -> str:
        """The path without its one trailing ``/`` (keys may hold empty segments: ``p//``)."""
        return self.path[:-1] if self.path.endswith("/") else self.path

    @property
    def parent(self) -> StorageURL:
        """The folder holding this URL (a root is its own parent).

        Its path ends with ``/``, except a bucket root, whose key is empty (``s3://bucket``).
        """
        trimmed = self._trimmed
        if not trimmed.strip("/"):
            return replace(self, query="")
        head = trimmed.rpartition("/")[0]
        if self.is_bucket:
            return replace(self, path=f"{head}/" if head else "", query="")
        return replace(self, path=f"{head}/", query="")

    @property
    def root(self) -> StorageURL:
        """The same location with an empty path: the bucket, the server, ``file:///``."""
        return replace(self, path="" if self.is_bucket else "/", query="")

    @property
    def local_path(self) -> Path:
        """The filesystem path of a ``file`` URL."""
        if not self.is_local:
            raise InvalidURLError(f"{self} is not a local path")
        return Path(self.path)

    # -- derivation ---------------------------------------------------------------------------
    def with_path(self, path: str) -> StorageURL:
        """The same location with another path (normalised like :func:`parse_url` does)."""
        return replace(self, path=_normalise_path(self.scheme, path), query="")

    def join(self, name: str) -> StorageURL:
        """``name`` (a relative path, may contain ``/``) under this URL taken as a folder."""
        name = name.lstrip("/")
        if not name:
            return self
        base = self.path if self.path.endswith("/") or self.path == "" else self.path + "/"
        return self.with_path(base + name)

    def as_folder(self) -> StorageURL:
        """This URL with a trailing ``/``: listing and folder transfers take URLs as folders."""
        return self if self.is_folder else replace(self, path=self.path + "/", query="")

    def relative_to(self, base: StorageURL) -> str:
        """The path of this URL under the folder ``base`` (``ValueError`` when it is not under it)."""
        folder = base.as_folder()
        if folder.root != self.root or not self.path.startswith(folder.path):
            raise ValueError(f"{self} is not under {folder}")
        return self.path[len(folder.path) :]

    # -- text --------------------------------------------------------------------------------
    def _render(self, password: str | None) -> str:
        if self.is_local:
            return "file://" + self.path
        if self.is_bucket:
            if self.scheme in ("wasb", "wasbs") or (self.scheme in ("abfs", "abfss")):
                location = f"{self.bucket}@{self.endpoint}" if self.host else str(self.bucket)
                return (
                    f"{self.scheme}://{location}/{self.path}" if self.path else f"{self.scheme}://{location}"
                )
            prefix = f"{self.endpoint}/{self.bucket}" if self.host else str(self.bucket)
            return f"{self.scheme}://{prefix}/{self.path}" if self.path else f"{self.scheme}://{prefix}"
        userinfo = ""
        if self.user is not None:
            userinfo = quote(self.user, safe=_USERINFO_SAFE)
            if password is not None:
                userinfo += ":" + password
            userinfo += "@"
        path = quote(self.path, safe=_PATH_SAFE) if self.scheme in ("http", "https") else self.path
        query = f"?{self.query}" if self.query else ""
        return f"{self.scheme}://{userinfo}{self.endpoint or ''}{path}{query}"

    def reveal(self) -> str:
        """The canonical URL *including* the password, for handing to a client library only.

        Never log or print it; ``parse_url(url.reveal()) == url`` always holds.
        """
        secret = None if self.password is None else quote(self.password, safe=_USERINFO_SAFE)
        return self._render(secret)

    def __str__(self) -> str:
        return self._render(None if self.password is None else MASK)

    def __repr__(self) -> str:
        return f"StorageURL({str(self)!r})"


# -- parsing ------------------------------------------------------------------------------------


def _normalise_path(scheme: str, path: str) -> str:
    """Keys lose their leading ``/`` and are otherwise kept exactly; paths gain a leading ``/``
    and ``//`` collapses in them, as file systems do. A trailing ``/`` stays."""
    if scheme == "file":
        folder = path.endswith(("/", os.sep)) and len(path) > 1
        normal = os.path.normpath(os.path.abspath(os.path.expanduser(path)))
        normal = _collapse(normal.replace(os.sep, "/"))
        return normal + "/" if folder and normal != "/" else normal
    if scheme in BUCKET_SCHEMES:
        # ``p//a.txt`` is a key of its own (ClearML's upload_folder to ``s3://b/p/`` writes such
        # keys), not ``p/a.txt``: folding it would fetch, list or delete another object
        return path.lstrip("/")
    return "/" + _collapse(path).lstrip("/")


def _fail(text: str, problem: str, hint: str = "") -> InvalidURLError:
    shown = _mask_text(text)
    return InvalidURLError(f"{problem}: {shown!r}" + (f"; {hint}" if hint else ""))


def _split_netloc(text: str, scheme: str, netloc: str) -> tuple[str | None, str | None, str, int | None]:
    """``user:password@host:port`` → (user, password, host, port); user parts percent-decoded."""
    userinfo, at, hostport = netloc.rpartition("@")
    user = password = None
    if at:
        raw_user, colon, raw_password = userinfo.partition(":")
        user = unquote(raw_user)
        password = unquote(raw_password) if colon else None
    port: int | None = None
    if hostport.startswith("["):
        host, bracket, rest = hostport[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise _fail(text, f"{scheme}:// URL has an invalid IPv6 host")
        port_text = rest[1:] if rest else None
    else:
        host, colon, port_text_raw = hostport.partition(":")
        port_text = port_text_raw if colon else None
        if host and not _HOST.match(host):
            raise _fail(text, f"{scheme}:// URL has an invalid host {host!r}")
    if port_text is not None:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise _fail(text, f"{scheme}:// URL has an invalid port {port_text!r}")
        port = int(port_text)
    return user, password, host, port


def _s3_endpoint(host: str, port: int | None) -> bool:
    """Whether the first component of an ``s3://`` URL is a server rather than a bucket."""
    lowered = host.lower()
    if port is not None or _is_ip(host) or lowered == "localhost":
        return True
    if "." not in host:
        return False
    if any(lowered == s or lowered.endswith("." + s) for s in _S3_ENDPOINT_SUFFIXES):
        return True
    # a dotted name that breaks bucket naming rules (upper case, empty labels, '-.') is a host
    return not _S3_BUCKET.match(host) or ".." in host or ".-" in host or "-." in host


def _parse_bucket(text: str, scheme: str, rest: str) -> StorageURL:
    netloc, _, path = rest.partition("/")
    what = "container" if scheme in _AZURE_SCHEMES else "bucket"
    if scheme in ("wasb", "wasbs", "abfs", "abfss"):
        container, at, hostport = netloc.rpartition("@")
        if not at:
            if scheme in ("wasb", "wasbs"):
                raise _fail(
                    text,
                    f"{scheme}:// URL has no account",
                    f"write {scheme}://<container>@<account>.blob.core.windows.net/<path>",
                )
            container, hostport = netloc, ""
        if not container:
            raise _fail(text, f"{scheme}:// URL has no container")
        if ":" in container:
            raise _fail(text, f"{scheme}:// URLs cannot carry credentials", "configure them in clearml.conf")
        host: str | None = None
        port = None
        if hostport:
            _, _, host, port = _split_netloc(text, scheme, hostport)
            host = host.lower()
        return StorageURL(scheme, _normalise_path(scheme, path), container, host or None, port)
    if "@" in netloc:
        raise _fail(
            text,
            f"{scheme}:// URLs cannot carry credentials",
            "configure them in clearml.conf or the environment",
        )
    if not netloc:
        raise _fail(text, f"{scheme}:// URL has no {what}")
    _, _, host, port = _split_netloc(text, scheme, netloc)
    if scheme == "azure":
        host = host.lower()
        if "." not in host and not _is_ip(host) and host != "localhost" and port is None:
            host += _AZURE_BLOB_SUFFIX
        container, _, key = path.lstrip("/").partition("/")
        if not container:
            raise _fail(
                text,
                "azure:// URL has no container",
                "write azure://<account>.blob.core.windows.net/<container>/<path>",
            )
        return StorageURL(scheme, _normalise_path(scheme, key), container, host, port)
    if scheme == "s3" and _s3_endpoint(host, port):
        bucket, _, key = path.lstrip("/").partition("/")
        if not bucket:
            raise _fail(text, f"s3:// URL names the endpoint {netloc!r} but no bucket")
        # the host keeps its case: lower-cased, "Minio.Corp.Local" would read as a bucket name
        return StorageURL(scheme, _normalise_path(scheme, key), bucket, host, port)
    if port is not None:
        raise _fail(text, f"{scheme}:// URL has a port but no server")
    return StorageURL(scheme, _normalise_path(scheme, path), host)


def _parse_host(text: str, scheme: str, rest: str) -> StorageURL:
    query = ""
    if scheme in ("http", "https"):
        end = next((i for i, ch in enumerate(rest) if ch in "/?#"), len(rest))
        netloc, remainder = rest[:end], rest[end:]
        remainder = remainder.partition("#")[0]
        raw_path, _, query = remainder.partition("?")
        path = unquote(raw_path)
    else:
        netloc, _, path = rest.partition("/")
    user, password, host, port = _split_netloc(text, scheme, netloc)
    if not host and (scheme in _HOST_REQUIRED or user is not None or port is not None):
        raise _fail(text, f"{scheme}:// URL has no host")
    if scheme in _CASE_INSENSITIVE_HOSTS:
        host = host.lower()
    if _DEFAULT_PORTS.get(scheme) == port:
        port = None
    return StorageURL(
        scheme,
        _normalise_path(scheme, path),
        host=host or None,
        port=port,
        user=user,
        password=password,
        query=query,
    )


def _parse_file(text: str, rest: str) -> StorageURL:
    if rest.startswith("//"):
        host, _, path = rest[2:].partition("/")
        if host and host.lower() != "localhost":
            raise _fail(
                text,
                f"file:// URL names the host {host!r}",
                f"for an absolute path write file:///{host}/{path}",
            )
        rest = "/" + path
    return StorageURL("file", _normalise_path("file", rest or "/"))


def parse_url(text: str | os.PathLike[str] | StorageURL) -> StorageURL:
    """Parse any storage location users write; raise :class:`InvalidURLError` saying what is wrong.

    Plain paths (absolute, relative, ``~``) become ``file`` URLs with an absolute path.
    """
    if isinstance(text, StorageURL):
        return text
    if isinstance(text, os.PathLike):
        text = os.fspath(text)
    if not isinstance(text, str):
        raise InvalidURLError(f"a storage URL must be text, not {type(text).__name__}")
    if not text.strip():
        raise InvalidURLError("empty storage URL")
    if _CONTROL.search(text):
        raise _fail(text, "storage URL contains a control character (newline, tab, …)")
    scheme_text, sep, rest = text.partition("://")
    if not sep:
        if text[:5].lower() == "file:" and len(text) > 5:
            return _parse_file(text, text[5:])
        return StorageURL("file", _normalise_path("file", text))
    if len(scheme_text) == 1 and scheme_text.isalpha():
        # a Windows drive letter written with forward slashes: C://data
        return StorageURL("file", _normalise_path("file", text))
    if not _SCHEME.match(scheme_text):
        raise _fail(text, f"storage URL has an invalid scheme {scheme_text!r}")
    scheme = scheme_text.lower()
    if scheme == "file":
        return _parse_file(text, "//" + rest)
    if scheme in BUCKET_SCHEMES:
        return _parse_bucket(text, scheme, rest)
    return _parse_host(text, scheme, rest)
