"""The file server: what ClearML's SDK sends to a files server, and serves back, under one folder.

* ``POST /`` with ``multipart/form-data``: each part is stored at the path its field name gives
  (ClearML's SDK names the part ``project/task-id/artifacts/name/file``); the answer is the JSON
  list of stored paths. Parts stream to a temporary file beside the target and replace it when
  complete, so a broken upload leaves nothing behind.
* ``GET /<path>`` (``?download`` for an attachment) and ``HEAD``, with ``Range``, ``ETag`` and
  ``Last-Modified``, as Flask's ``send_from_directory`` answers them.
* ``DELETE /<path>``; ``POST /delete_many`` with ``{"files": […]}`` when
  ``fileserver.delete.allow_batch`` is on.

A path that leaves the upload folder (``..``, an absolute path, a link out of it) is refused with
400 and nothing is written. With ``fileserver.auth.enabled`` or fixed users, every request needs a
session token (``Authorization: Bearer``, or the session cookie a browser has).
"""

from __future__ import annotations

import contextlib
import email.utils
import json
import logging
import mimetypes
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from clearml_core.server.context import ServerContext
from clearml_core.server.errors import ApiError
from clearml_core.server.httpd import BodyTooLarge, HttpRequest, HttpResponse

log = logging.getLogger("clearml_core.server.files")

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
_NAME = re.compile(r'\bname="((?:[^"\\]|\\.)*)"', re.IGNORECASE)
SEND_CHUNK = 1024 * 1024


class UnsafePath(ValueError):
    """The path leaves the upload folder."""


def _text(status: int, message: str) -> HttpResponse:
    return HttpResponse(status, (message + "\n").encode(), [("Content-Type", "text/plain; charset=utf-8")])


def _form_unquote(value: str) -> str:
    """A multipart name as browsers and urllib3 quote it (``%22``, ``%0D``, ``%0A``, ``\\"``)."""
    value = re.sub(r"\\(.)", r"\1", value)
    return value.replace("%22", '"').replace("%0D", "\r").replace("%0A", "\n")


def safe_target(root: Path, name: str) -> Path:
    """Where ``name`` lives under ``root``; :class:`UnsafePath` when it would leave it."""
    relative = name.replace("\\", "/").lstrip("/")
    parts = [part for part in relative.split("/") if part not in ("", ".")]
    if not parts or any(part == ".." for part in parts) or "\x00" in relative:
        raise UnsafePath(name)
    target = root.joinpath(*parts)
    resolved_root = root.resolve()
    try:
        target.resolve().relative_to(resolved_root)
    except ValueError:
        raise UnsafePath(name) from None
    return target


class _Parts:
    """A streaming ``multipart/form-data`` reader: ``(headers, body chunks)`` per part."""

    def __init__(self, chunks: Iterator[bytes], boundary: bytes) -> None:
        self._chunks = chunks
        self._buffer = b""
        self._delimiter = b"--" + boundary
        self._marker = b"\r\n" + self._delimiter
        self._finished = False

    def _fill(self) -> bool:
        chunk = next(self._chunks, None)
        if chunk is None:
            return False
        self._buffer += chunk
        return True

    def _read_until(self, token: bytes, limit: int = 65536) -> bytes:
        while token not in self._buffer:
            if len(self._buffer) > limit or not self._fill():
                raise ValueError("malformed multipart body")
        head, _, self._buffer = self._buffer.partition(token)
        return head

    def __iter__(self) -> Iterator[tuple[str, Iterator[bytes]]]:
        self._read_until(self._delimiter)
        while True:
            while len(self._buffer) < 2:
                if not self._fill():
                    raise ValueError("malformed multipart body")
            if self._buffer.startswith(b"--"):
                return
            if not self._buffer.startswith(b"\r\n"):
                raise ValueError("malformed multipart body")
            self._buffer = self._buffer[2:]
            headers = self._read_until(b"\r\n\r\n").decode("utf-8", "replace")
            yield headers, self._body()

    def _body(self) -> Iterator[bytes]:
        keep = len(self._marker) - 1
        while True:
            found = self._buffer.find(self._marker)
            if found >= 0:
                data, self._buffer = self._buffer[:found], self._buffer[found + len(self._marker) :]
                if data:
                    yield data
                return
            if len(self._buffer) > keep:
                data, self._buffer = self._buffer[:-keep], self._buffer[-keep:]
                yield data
            if not self._fill():
                raise ValueError("the multipart body ended inside a part")


class FileApplication:
    """The files role."""

    name = "file server"

    def __init__(self, ctx: ServerContext) -> None:
        self.ctx = ctx
        self.root = ctx.upload_folder
        self.root.mkdir(parents=True, exist_ok=True)

    # -- dispatch ----------------------------------------------------------------------------
    def handle(self, request: HttpRequest) -> HttpResponse:
        if request.method == "OPTIONS":
            return HttpResponse(200, b"", [("Allow", "GET, HEAD, POST, DELETE, OPTIONS")])
        if request.headers.get("content-encoding"):
            return _text(415, f"Content encoding is not supported ({request.headers['content-encoding']})")
        denied = self._check_token(request)
        if denied is not None:
            return denied
        path = request.path
        try:
            if request.method == "POST" and path in ("", "/"):
                return self._upload(request)
            if (
                request.method == "POST"
                and path == "/delete_many"
                and self.ctx.settings.files_allow_batch_delete
            ):
                return self._delete_many(request)
            if request.method in ("GET", "HEAD") and path in ("", "/"):
                return _text(200, "OK")
            if request.method in ("GET", "HEAD"):
                return self._download(request, path)
            if request.method == "DELETE":
                return self._delete(path)
        except UnsafePath as error:
            log.warning(
                "refused a path outside the upload folder from %s: %r", request.address, str(error)[:200]
            )
            return _text(
                400, f"the path {str(error)[:200]!r} leaves the file server's folder; nothing was done"
            )
        return _text(405, f"{request.method} is not served here")

    def _check_token(self, request: HttpRequest) -> HttpResponse | None:
        if not self.ctx.settings.files_need_token:
            return None
        header = request.headers.get("authorization", "")
        token = ""
        if header:
            scheme, _, value = header.partition(" ")
            if scheme.lower() != "bearer":
                return _text(401, "Only bearer token authorization is supported")
            token = value.strip()
        else:
            cookies = request.headers.get("cookie", "")
            for name in self.ctx.settings.files_cookie_names:
                match = re.search(rf"(?:^|;\s*){re.escape(name)}=([^;]+)", cookies)
                if match:
                    token = match.group(1).strip()
                    break
        if not token:
            return _text(
                401, "Unauthorized: this file server needs a session token (sign in to the API server first)"
            )
        try:
            self.ctx.auth.from_token(token)
        except ApiError as error:
            return _text(401, error.message)
        return None

    # -- upload ------------------------------------------------------------------------------
    def _upload(self, request: HttpRequest) -> HttpResponse:
        content_type = request.headers.get("content-type", "")
        match = re.search(r'boundary="?([^";]+)"?', content_type)
        if not content_type.lower().startswith("multipart/form-data") or match is None:
            return _text(400, "upload with multipart/form-data: one part per file, named by its path")
        limit = self.ctx.settings.max_upload_bytes
        if limit is not None and (request.content_length or 0) > limit:
            return _text(
                413, f"the upload is larger than {limit} bytes (fileserver.upload.max_upload_size_mb)"
            )
        stored: list[str] = []
        written: list[tuple[Path, Path]] = []
        try:
            for headers, body in _Parts(request.iter_body(limit), match.group(1).encode("latin-1")):
                name_match = _NAME.search(headers)
                name = _form_unquote(name_match.group(1)) if name_match else ""
                if not name:
                    for _ in body:
                        pass
                    continue
                target = safe_target(self.root, name)
                written.append((self._store(target, body), target))
                stored.append(name.lstrip("/"))
        except BodyTooLarge:
            self._discard(written)
            return _text(
                413, f"the upload is larger than {limit} bytes (fileserver.upload.max_upload_size_mb)"
            )
        except UnsafePath:
            self._discard(written)
            raise
        except ValueError as error:
            self._discard(written)
            return _text(400, f"{error}; nothing was stored")
        for temporary, target in written:
            os.replace(temporary, target)
        log.info("uploaded %d file(s) from %s", len(stored), request.address)
        return HttpResponse(200, json.dumps(stored).encode(), [("Content-Type", "application/json")])

    @staticmethod
    def _store(target: Path, body: Iterator[bytes]) -> Path:
        """The part's bytes in a temporary file beside ``target`` (renamed once all parts arrived)."""
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(prefix=f"{target.name}.upload-", dir=target.parent)
        try:
            with os.fdopen(handle, "wb") as out:
                for chunk in body:
                    out.write(chunk)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(name)
            raise
        return Path(name)

    @staticmethod
    def _discard(written: list[tuple[Path, Path]]) -> None:
        for temporary, _target in written:
            with contextlib.suppress(OSError):
                temporary.unlink()

    # -- download ----------------------------------------------------------------------------
    def _download(self, request: HttpRequest, path: str) -> HttpResponse:
        target = safe_target(self.root, path)
        try:
            info = target.stat()
        except OSError:
            return _text(404, f"File {path.lstrip('/')} not found")
        if not target.is_file():
            return _text(404, f"File {path.lstrip('/')} not found")
        etag = f'"{info.st_mtime_ns:x}-{info.st_size:x}"'
        headers = [
            ("Content-Type", self._content_type(target)),
            ("Accept-Ranges", "bytes"),
            ("ETag", etag),
            ("Last-Modified", email.utils.formatdate(info.st_mtime, usegmt=True)),
        ]
        if self.ctx.settings.files_no_cache:
            headers += [("Cache-Control", "no-cache"), ("Pragma", "no-cache"), ("Expires", "0")]
        else:
            headers.append(("Cache-Control", f"max-age={self.ctx.settings.files_cache_timeout_sec}"))
        if "download" in request.query.split("&") or request.query.startswith("download="):
            headers.append(("Content-Disposition", f'attachment; filename="{target.name}"'))
        start, stop = 0, info.st_size
        status = 200
        wanted = request.headers.get("range", "")
        if_range = request.headers.get("if-range")
        match = _RANGE.match(wanted.strip())
        if match and (if_range is None or if_range == etag):
            first, last = match.group(1), match.group(2)
            if first:
                start = int(first)
                stop = min(info.st_size, int(last) + 1) if last else info.st_size
            elif last:
                start = max(0, info.st_size - int(last))
            if start >= info.st_size or start >= stop:
                return HttpResponse(416, b"", [("Content-Range", f"bytes */{info.st_size}")])
            status = 206
            headers.append(("Content-Range", f"bytes {start}-{stop - 1}/{info.st_size}"))
        handle = target.open("rb")
        handle.seek(start)
        return HttpResponse(status, _FileBody(handle, stop - start), headers, length=stop - start)

    @staticmethod
    def _content_type(target: Path) -> str:
        kind, encoding = mimetypes.guess_type(target.name)
        if encoding == "gzip" or not kind:
            return "application/octet-stream"
        return kind

    # -- delete ------------------------------------------------------------------------------
    def _delete(self, path: str) -> HttpResponse:
        target = safe_target(self.root, path)
        if not target.is_file():
            return _text(404, f"File {path.lstrip('/')} not found")
        target.unlink()
        log.info("deleted %s", path.lstrip("/"))
        return HttpResponse(
            200, json.dumps(path.lstrip("/")).encode(), [("Content-Type", "application/json")]
        )

    def _delete_many(self, request: HttpRequest) -> HttpResponse:
        try:
            body: Any = json.loads(request.read_body(1024 * 1024) or b"null")
        except (ValueError, BodyTooLarge):
            return _text(400, 'send a JSON object {"files": [paths]}')
        files = body.get("files") if isinstance(body, dict) else None
        if not files:
            return _text(400, "files are missing")
        deleted: dict[str, str] = {}
        errors: dict[str, list[str]] = {}
        for name in files:
            try:
                target = safe_target(self.root, str(name))
            except UnsafePath:
                errors.setdefault("Path outside the upload folder", []).append(str(name))
                continue
            if target.is_file():
                target.unlink()
            elif target.is_dir():
                shutil.rmtree(target)
            else:
                errors.setdefault("Not found", []).append(str(name))
                continue
            deleted[str(name)] = str(name)
        return HttpResponse(
            200,
            json.dumps({"deleted": deleted, "errors": errors}).encode(),
            [("Content-Type", "application/json")],
        )


class _FileBody:
    """``count`` bytes of an open file, in pieces; closed once sent."""

    def __init__(self, handle: IO[bytes], count: int) -> None:
        self._handle = handle
        self._count = count

    def __iter__(self) -> Iterator[bytes]:
        left = self._count
        while left > 0:
            data = self._handle.read(min(SEND_CHUNK, left))
            if not data:
                break
            left -= len(data)
            yield data

    def close(self) -> None:
        self._handle.close()


__all__ = ["FileApplication", "UnsafePath", "safe_target"]
