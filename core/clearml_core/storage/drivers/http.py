"""HTTP(S) servers and the ClearML file server, on the standard library alone.

* Download: ``GET``, with ``Range`` for byte ranges; a download that loses its connection resumes
  where it stopped (``Range`` + ``If-Range`` on the validator the first response gave), so a long
  transfer over a flaky link does not start over.
* Stat / exists: ``HEAD`` (size, ``Last-Modified``, ``ETag``, ``Content-Type``).
* Upload: a ``multipart/form-data`` POST, as ClearML's file server accepts it — one part whose
  field name is the object path. URLs under ``api.files_server`` (or
  ``sdk.storage.http.legacy_fileservers``) are posted to that base URL with the path below it;
  any other URL is posted to the server root with its whole path, as ClearML does.
* Delete: ``DELETE`` on the object URL.
* Listing: plain HTTP cannot list (``capabilities.listing`` is False).

Credentials in the URL (``https://user:password@host/…``) are sent as Basic auth. A file server
that asks for a session token (a ClearML server with fixed users) gets one for URLs under
``api.files_server`` when ``api.credentials`` are configured, signed in for as ClearML's SDK does
(:mod:`clearml_core.storage.fileserver_auth`). TLS follows
``api.verify_certificate`` (True, False, or a CA bundle path); ``HTTP(S)_PROXY`` / ``NO_PROXY``
are honoured.
"""

from __future__ import annotations

import base64
import contextlib
import email.utils
import http.client
import io
import ssl
import tempfile
import threading
import uuid
from collections.abc import Iterator, Mapping
from typing import Any, BinaryIO
from urllib.parse import quote, urljoin, urlsplit

from clearml_core.storage.driver import (
    COPY_CHUNK,
    ByteRange,
    Capabilities,
    ObjectInfo,
    StorageDriver,
)
from clearml_core.storage.errors import (
    ObjectNotFoundError,
    PermissionDeniedError,
    StorageError,
    TransientStorageError,
    UnsupportedOperationError,
)
from clearml_core.storage.fileserver_auth import FileServerAuth
from clearml_core.storage.url import StorageURL, parse_url

_PATH_SAFE = "/!$&'()*+,;=:@-._~"
_TRANSIENT_STATUS = {408, 425, 429, 500, 502, 503, 504, 509}
_REDIRECTS = {301, 302, 303, 307, 308}
_MAX_REDIRECTS = 5
_RESUME_PROGRESS = 1024 * 1024  # bytes a download must gain before its resume budget refills
_CONNECTION_ERRORS = (OSError, http.client.HTTPException)

ConnectionKey = tuple[str, str, int]


def _request_target(url: StorageURL) -> str:
    target = quote(url.path or "/", safe=_PATH_SAFE)
    return f"{target}?{url.query}" if url.query else target


def _form_quote(value: str) -> str:
    """A multipart parameter value the HTML5 way (what requests / urllib3 send)."""
    return value.replace("\\", "\\\\").replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")


def _retry_after(response: http.client.HTTPResponse) -> float | None:
    value = response.getheader("Retry-After")
    if value is None:
        return None
    with contextlib.suppress(ValueError):
        return max(0.0, float(value))
    return None


def _http_date(value: str | None) -> float | None:
    if not value:
        return None
    with contextlib.suppress(TypeError, ValueError, IndexError):
        return email.utils.parsedate_to_datetime(value).timestamp()
    return None


class HttpDriver(StorageDriver):
    """Plain HTTP(S) and ClearML file servers."""

    capabilities = Capabilities(
        ranges=True,
        server_side_copy=False,
        streaming_upload=False,
        atomic_write=False,
        listing=False,
        listing_is_consistent=True,
        content_type=False,
        etag=True,
        mtime=True,
        metadata=False,
        directories=False,
    )
    timeout: float = 60.0
    """Seconds a connect or a single read may take before it counts as a (transient) failure
    (``sdk.storage.http.socket_timeout_sec``)."""
    resume_attempts: int = 5
    """How many times in a row a download resumes after losing its connection (the count starts
    over once it has gained a MiB since the last break)."""

    def __init__(self, config: Any, url: StorageURL) -> None:
        super().__init__(config, url)
        if config is not None:
            self.timeout = (
                config.get_float("sdk.storage.http.socket_timeout_sec", self.timeout) or self.timeout
            )
        self._idle: dict[ConnectionKey, list[http.client.HTTPConnection]] = {}
        self._lock = threading.Lock()
        self._ssl: ssl.SSLContext | None = None
        self._file_servers = [
            parse_url(base).as_folder()
            for base in [
                config.get_str("api.files_server", "") if config is not None else "",
                *(config.get_list("sdk.storage.http.legacy_fileservers") if config is not None else []),
            ]
            if base and str(base).lower().startswith(("http://", "https://"))
        ]
        self._auth = FileServerAuth(config, self._ssl_context, self.timeout)

    @classmethod
    def connection_key(cls, url: StorageURL) -> Any:
        # one driver (one connection pool) for every server; connections are keyed per host inside
        return (url.user, url.password)

    # -- connections ------------------------------------------------------------------------
    def _ssl_context(self) -> ssl.SSLContext:
        if self._ssl is None:
            from clearml_core.tls import verifying_context

            verify = self.config.get("api.verify_certificate", True) if self.config is not None else True
            self._ssl = verifying_context(verify)
        return self._ssl

    @staticmethod
    def _key(url: StorageURL) -> ConnectionKey:
        port = url.port or (443 if url.scheme == "https" else 80)
        return (url.scheme, url.host or "", port)

    def _proxy_for(self, url: StorageURL) -> tuple[str, int] | None:
        import urllib.request

        proxy = urllib.request.getproxies().get(url.scheme)
        if not proxy or urllib.request.proxy_bypass(url.host or ""):
            return None
        parts = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
        return (parts.hostname or "", parts.port or 80) if parts.hostname else None

    def _new_connection(self, url: StorageURL) -> http.client.HTTPConnection:
        scheme, host, port = self._key(url)
        proxy = self._proxy_for(url)
        if scheme == "https":
            if proxy:
                conn: http.client.HTTPConnection = http.client.HTTPSConnection(
                    *proxy, timeout=self.timeout, context=self._ssl_context()
                )
                conn.set_tunnel(host, port)
                return conn
            return http.client.HTTPSConnection(host, port, timeout=self.timeout, context=self._ssl_context())
        if proxy:
            conn = http.client.HTTPConnection(*proxy, timeout=self.timeout)
            conn._clearml_proxy = True  # type: ignore[attr-defined]  # absolute-URI request targets
            return conn
        return http.client.HTTPConnection(host, port, timeout=self.timeout)

    def _acquire(self, url: StorageURL) -> tuple[http.client.HTTPConnection, bool]:
        """A connection to ``url``'s server and whether it was reused (reused ones may be stale)."""
        with self._lock:
            idle = self._idle.get(self._key(url))
            if idle:
                return idle.pop(), True
        return self._new_connection(url), False

    def _release(self, url: StorageURL, conn: http.client.HTTPConnection) -> None:
        with self._lock:
            self._idle.setdefault(self._key(url), []).append(conn)

    def close(self) -> None:
        with self._lock:
            connections = [conn for idle in self._idle.values() for conn in idle]
            self._idle.clear()
        for conn in connections:
            conn.close()

    # -- requests ---------------------------------------------------------------------------
    def _headers(self, url: StorageURL, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        headers = {"User-Agent": "clearml-core", "Accept-Encoding": "identity"}
        if url.user is not None:
            token = f"{url.user}:{url.password or ''}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(token).decode("ascii")
        elif self._auth.configured and self._on_file_server(url):
            headers.update(self._auth.headers())
        headers.update(extra or {})
        return headers

    def _on_file_server(self, url: StorageURL) -> bool:
        for base in self._file_servers:
            if base.root == url.root:
                try:
                    url.relative_to(base)
                except ValueError:
                    continue
                return True
        return False

    def _send(
        self,
        method: str,
        url: StorageURL,
        headers: Mapping[str, str] | None = None,
        body: Iterator[bytes] | None = None,
    ) -> tuple[http.client.HTTPResponse, http.client.HTTPConnection]:
        """One request; a stale keep-alive connection is retried once on a fresh one."""
        all_headers = self._headers(url, headers)
        for attempt in range(2):
            conn, reused = self._acquire(url)
            target = _request_target(url)
            if getattr(conn, "_clearml_proxy", False):
                target = f"{url.scheme}://{url.endpoint}{target}"
            try:
                conn.putrequest(method, target, skip_accept_encoding=True)
                for name, value in all_headers.items():
                    conn.putheader(name, value)
                conn.endheaders()
                if body is not None:
                    for chunk in body:
                        conn.send(chunk)
                return conn.getresponse(), conn
            except StorageError:
                conn.close()  # the body broke off half-way: this connection is unusable
                raise
            except _CONNECTION_ERRORS as error:
                conn.close()
                stale = reused and isinstance(
                    error, (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)
                )
                if stale and attempt == 0 and body is None:
                    continue
                raise TransientStorageError(
                    f"{method} {url} failed: {type(error).__name__}: {error}"
                ) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _request(
        self, method: str, url: StorageURL, headers: Mapping[str, str] | None = None
    ) -> tuple[http.client.HTTPResponse, http.client.HTTPConnection, StorageURL]:
        """A body-less request, following redirects; returns the final URL too."""
        signed_in_again = False
        for _ in range(_MAX_REDIRECTS + 2):
            response, conn = self._send(method, url, headers)
            if (
                response.status == 401
                and not signed_in_again
                and url.user is None
                and self._on_file_server(url)
            ):
                signed_in_again = True
                if self._auth.refresh():  # the token expired or the server restarted with a new secret
                    self._finish(response, url, conn)
                    continue
            if response.status not in _REDIRECTS:
                return response, conn, url
            location = response.getheader("Location")
            self._finish(response, url, conn)
            if not location:
                raise StorageError(f"{method} {url}: redirect without a Location")
            target = parse_url(urljoin(url.reveal(), location))
            if target.scheme not in ("http", "https"):
                raise StorageError(f"{method} {url}: redirected to a non-HTTP URL {target}")
            # a relative Location keeps the origin's credentials; another host gets none
            url = target
        raise StorageError(f"{method} {url}: more than {_MAX_REDIRECTS} redirects")

    def _finish(
        self, response: http.client.HTTPResponse, url: StorageURL, conn: http.client.HTTPConnection
    ) -> bytes:
        """Read the rest of the body and keep the connection when the server allows it."""
        try:
            data = response.read()
        except _CONNECTION_ERRORS:
            conn.close()
            return b""
        if response.will_close:
            conn.close()
        else:
            self._release(url, conn)
        return data

    def _raise_for(
        self, response: http.client.HTTPResponse, url: StorageURL, action: str, body: bytes
    ) -> None:
        status = response.status
        detail = body[:200].decode("utf-8", "replace").strip()
        reason = f"HTTP {status} {response.reason}" + (f": {detail}" if detail else "")
        if status in (404, 410):
            raise ObjectNotFoundError(f"cannot {action} {url}: no such object ({reason})")
        if status in (401, 403):
            raise PermissionDeniedError(
                f"cannot {action} {url}: {reason}; check the credentials for this server"
            )
        if status in _TRANSIENT_STATUS:
            raise TransientStorageError(
                f"cannot {action} {url}: {reason}", retry_after=_retry_after(response)
            )
        if status in (405, 501):
            raise UnsupportedOperationError(f"cannot {action} {url}: the server does not allow it ({reason})")
        raise StorageError(f"cannot {action} {url}: {reason}")

    # -- the protocol -----------------------------------------------------------------------
    def stat(self, url: StorageURL) -> ObjectInfo:
        response, conn, _final = self._request("HEAD", url)
        body = self._finish(response, url, conn)
        if response.status != 200:
            self._raise_for(response, url, "stat", body)
        length = response.getheader("Content-Length")
        return ObjectInfo(
            url=url,
            size=int(length) if length and length.isdigit() else None,
            mtime=_http_date(response.getheader("Last-Modified")),
            etag=response.getheader("ETag"),
            content_type=response.getheader("Content-Type"),
        )

    def exists(self, url: StorageURL) -> bool:
        try:
            self.stat(url)
        except ObjectNotFoundError:
            return False
        return True

    def open_read(self, url: StorageURL, byte_range: ByteRange | None = None) -> BinaryIO:
        start, stop = byte_range if byte_range is not None else (0, None)
        if start < 0 or (stop is not None and stop < start):
            raise ValueError(f"invalid byte range {byte_range!r}")
        if stop is not None and stop == start:
            self.stat(url)  # an empty range still tells a missing object apart
            return io.BytesIO(b"")
        reader = _ResumingReader(self, url, start, stop)
        return io.BufferedReader(reader, COPY_CHUNK)

    def upload_stream(
        self,
        stream: BinaryIO,
        url: StorageURL,
        *,
        size: int | None = None,
        content_type: str | None = None,
        extra: Mapping[str, str] | None = None,
    ) -> None:
        if url.is_folder:
            raise StorageError(f"cannot upload to {url}: the URL names a folder (it ends with '/')")
        spool: Any = None
        if size is None:
            # the file server needs a Content-Length: learn the size without holding it in memory
            spool = tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024)  # noqa: SIM115
            size = 0
            while chunk := stream.read(COPY_CHUNK):
                spool.write(chunk)
                size += len(chunk)
            spool.seek(0)
            stream = spool
        try:
            self._post(stream, url, size, content_type or "application/octet-stream")
        finally:
            if spool is not None:
                spool.close()

    def _post_target(self, url: StorageURL) -> tuple[StorageURL, str]:
        """Where to POST and the field name: the file server base and the path below it."""
        for base in self._file_servers:
            if base.root == url.root:
                try:
                    return base, url.relative_to(base)
                except ValueError:
                    continue
        return url.root, url.path.lstrip("/")

    def _post(self, stream: BinaryIO, url: StorageURL, size: int, content_type: str) -> None:
        target, field = self._post_target(url)
        boundary = uuid.uuid4().hex
        name = _form_quote(field)
        head = (
            f"--{boundary}\r\n"
            f'Content-Disposition: form-data; name="{name}"; filename="{name}"\r\n'
            f"Content-Type: {content_type}\r\n\r\n"
        ).encode()
        tail = f"\r\n--{boundary}--\r\n".encode()
        sent = 0

        def body() -> Iterator[bytes]:
            nonlocal sent
            yield head
            while sent < size and (chunk := stream.read(min(COPY_CHUNK, size - sent))):
                sent += len(chunk)
                yield chunk
            if sent != size:
                raise StorageError(
                    f"cannot upload {url}: the stream gave {sent} bytes, not the {size} announced"
                )
            yield tail

        headers = {
            "Content-Type": f"multipart/form-data; boundary={boundary}",
            "Content-Length": str(len(head) + size + len(tail)),
        }
        response, conn = self._send("POST", target, headers, body())
        data = self._finish(response, target, conn)
        if response.status not in (200, 201, 204):
            self._raise_for(response, url, "upload", data)

    def delete(self, url: StorageURL) -> None:
        response, conn, _final = self._request("DELETE", url)
        body = self._finish(response, url, conn)
        if response.status not in (200, 202, 204):
            self._raise_for(response, url, "delete", body)

    def list(self, url: StorageURL, *, recursive: bool = False) -> Iterator[ObjectInfo]:
        raise UnsupportedOperationError(f"cannot list {url}: HTTP servers do not offer listings")


class _ResumingReader(io.RawIOBase):
    """The body of a GET that reopens with ``Range`` from where it stopped when the link drops."""

    def __init__(self, driver: HttpDriver, url: StorageURL, start: int, stop: int | None) -> None:
        self._driver = driver
        self._url = url
        self._pos = start
        self._stop = stop
        self._validator: str | None = None
        self._resumable = False
        self._response: http.client.HTTPResponse | None = None
        self._conn: http.client.HTTPConnection | None = None
        self._final = url
        self._resumes = 0
        self._resumed_at = start
        self._end: int | None = None
        """Offset where the current response's body ends (None: unknown, read to EOF)."""
        self._open(first=True)

    def readable(self) -> bool:
        return True

    def _open(self, *, first: bool) -> None:
        headers: dict[str, str] = {}
        if self._pos or self._stop is not None:
            last = "" if self._stop is None else str(self._stop - 1)
            headers["Range"] = f"bytes={self._pos}-{last}"
            if not first and self._validator:
                headers["If-Range"] = self._validator
        response, conn, final = self._driver._request("GET", self._final, headers)
        self._final = final
        wanted_range = "Range" in headers
        if response.status == 416 and first:
            body = self._driver._finish(response, final, conn)
            # the range starts at or after the end: an empty read, once we know the object exists
            self._driver.stat(self._url)
            self._response = None
            self._stop = self._pos
            del body
            return
        if response.status not in (200, 206):
            body = self._driver._finish(response, final, conn)
            self._driver._raise_for(response, self._url, "download", body)
        if not first and response.status != 206:
            self._driver._finish(response, final, conn)
            raise StorageError(f"cannot resume the download of {self._url}: it changed on the server")
        if first:
            self._validator = response.getheader("ETag") or response.getheader("Last-Modified")
            self._resumable = response.status == 206 or (response.getheader("Accept-Ranges") or "") == "bytes"
        self._response, self._conn = response, conn
        length = response.getheader("Content-Length")
        body_start = self._pos if response.status == 206 else 0
        self._end = body_start + int(length) if length and length.isdigit() else None
        if wanted_range and response.status == 200:
            self._skip(self._pos)

    def _skip(self, count: int) -> None:
        """The server ignored ``Range``: read and drop the bytes before the wanted start."""
        assert self._response is not None
        while count > 0:
            data = self._response.read(min(count, COPY_CHUNK))
            if not data:
                break
            count -= len(data)

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        if self._stop is not None:
            view = view[: max(0, self._stop - self._pos)]
        if not len(view) or self._response is None:
            return 0
        while True:
            try:
                count = self._response.readinto(view)
                if count == 0 and self._end is not None and self._pos < self._end:
                    # http.client reports a body cut short as a plain end of stream
                    raise http.client.IncompleteRead(b"", self._end - self._pos)
            except _CONNECTION_ERRORS as error:
                if self._pos - self._resumed_at >= _RESUME_PROGRESS:
                    self._resumes = 0  # it was moving: a fresh budget for this stretch
                if not self._resumable or self._resumes >= self._driver.resume_attempts:
                    self._abandon()
                    raise TransientStorageError(
                        f"the download of {self._url} broke off at byte {self._pos}: {type(error).__name__}"
                    ) from None
                self._abandon()
                self._resumes += 1
                self._resumed_at = self._pos
                self._open(first=False)
                continue
            self._pos += count
            if count == 0:
                self._done()
            return count

    def _abandon(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self._response = self._conn = None

    def _done(self) -> None:
        if self._response is not None and self._conn is not None:
            self._driver._finish(self._response, self._final, self._conn)
        self._response = self._conn = None

    def close(self) -> None:
        if not self.closed:
            if self._response is not None and self._response.isclosed():
                self._done()
            else:
                self._abandon()
        super().close()


__all__ = ["HttpDriver"]
