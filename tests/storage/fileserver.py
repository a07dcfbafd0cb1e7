"""A small file server that speaks what ClearML's file server speaks, for tests on 127.0.0.1.

* ``POST /`` with ``multipart/form-data``: every part is stored at the path its field name gives
  (ClearML's fileserver.py does ``request.files.items()`` → ``safe_join(root, name)``); the answer
  is the JSON list of stored paths.
* ``GET /<path>`` with single ``Range`` requests (``206`` / ``416``) and ``If-Range``; ``HEAD``;
  ``ETag``, ``Last-Modified``, ``Accept-Ranges: bytes`` (as Flask's ``send_from_directory`` does).
* ``DELETE /<path>``.

Test knobs: ``drop_after`` cuts the connection after that many body bytes of the next GETs
(``drops`` of them), to exercise resume; ``auth`` requires HTTP Basic credentials; ``fail_next``
answers the next requests with these statuses; ``redirects`` maps a path to a ``Location``;
``prefix`` serves everything under a path prefix, as a reverse proxy in front of a file server
does; ``requests`` records ``(method, path, range)`` of everything served.
"""

from __future__ import annotations

import base64
import email.utils
import json
import mimetypes
import os
import re
import shutil
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def _etag(st: os.stat_result) -> str:
    return f'"{st.st_ino:x}-{st.st_mtime_ns:x}-{st.st_size:x}"'


def _form_unquote(value: str) -> str:
    return value.replace("%22", '"').replace("%0D", "\r").replace("%0A", "\n").replace("\\\\", "\\")


def _parse_multipart(body: bytes, boundary: bytes) -> list[tuple[str, bytes]]:
    parts = []
    for chunk in body.split(b"--" + boundary)[1:]:
        if chunk.startswith(b"--"):
            break
        head, _, content = chunk[2:].partition(b"\r\n\r\n")
        headers = head.decode("utf-8")
        match = re.search(r'name="((?:[^"\\]|\\.)*)"', headers)
        if match is None:
            raise ValueError("part without a name")
        parts.append((_form_unquote(match.group(1)), content[:-2]))
    return parts


class FileServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, root: Path) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.root = root
        self.drop_after: int | None = None
        self.drops = 0
        self.auth: tuple[str, str] | None = None
        self.fail_next: list[int] = []
        self.redirects: dict[str, str] = {}
        self.prefix = ""
        self.requests: list[tuple[str, str, str | None]] = []
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/"

    def target(self, path: str) -> Path | None:
        resolved = (self.root / path.lstrip("/")).resolve()
        root = self.root.resolve()
        return resolved if resolved == root or root in resolved.parents else None


class _Handler(BaseHTTPRequestHandler):
    server: FileServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass

    def _record(self) -> bool:
        """Log the request and play the knobs; False when a knob already answered it."""
        with self.server.lock:
            self.server.requests.append((self.command, self.path, self.headers.get("Range")))
            failure = self.server.fail_next.pop(0) if self.server.fail_next else None
        if failure is not None:
            self._reply(failure, b"injected failure", {"Retry-After": "7"})
            return False
        location = self.server.redirects.get(urlsplit(self.path).path)
        if location is not None:
            self._reply(302, b"", {"Location": location})
            return False
        if self.server.prefix:
            path = urlsplit(self.path).path
            if not (path + "/").startswith(self.server.prefix + "/"):
                self._reply(404, b"outside the prefix")
                return False
            self.path = self.path[len(self.server.prefix) :] or "/"
        return True

    def _authorized(self) -> bool:
        if self.server.auth is None:
            return True
        expected = "Basic " + base64.b64encode(":".join(self.server.auth).encode()).decode()
        if self.headers.get("Authorization") == expected:
            return True
        self._reply(401, b"unauthorized", {"WWW-Authenticate": 'Basic realm="files"'})
        return False

    def _reply(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        if self.command == "POST" and not getattr(self, "body_read", False):
            # answering before reading the upload: drain it first, as Werkzeug does, so the
            # client is not reset while it still sends
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.body_read = True
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _file(self) -> Path | None:
        path = self.server.target(unquote(urlsplit(self.path).path))
        if path is None or not path.is_file():
            self._reply(404, b"not found")
            return None
        return path

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        if not self._record() or not self._authorized():
            return
        path = self._file()
        if path is None:
            return
        st = path.stat()
        size = st.st_size
        headers = {
            "ETag": _etag(st),
            "Last-Modified": email.utils.formatdate(st.st_mtime, usegmt=True),
            "Accept-Ranges": "bytes",
            "Content-Type": mimetypes.guess_type(path.name)[0] or "application/octet-stream",
        }
        start, stop = 0, size
        status = 200
        wanted = self.headers.get("Range")
        if_range = self.headers.get("If-Range")
        if wanted and (if_range is None or if_range == headers["ETag"]):
            match = _RANGE.match(wanted.strip())
            if match and (match.group(1) or match.group(2)):
                if match.group(1):
                    start = int(match.group(1))
                    stop = min(size, int(match.group(2)) + 1) if match.group(2) else size
                else:
                    start = max(0, size - int(match.group(2)))
                if start >= size:
                    self._reply(416, b"", {"Content-Range": f"bytes */{size}"})
                    return
                status = 206
                headers["Content-Range"] = f"bytes {start}-{stop - 1}/{size}"
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(stop - start))
        self.end_headers()
        if self.command == "HEAD":
            return
        drop_at = None
        with self.server.lock:
            if self.server.drops > 0 and self.server.drop_after is not None:
                self.server.drops -= 1
                drop_at = self.server.drop_after
        with path.open("rb") as stream:
            stream.seek(start)
            left = stop - start
            sent = 0
            while left > 0:
                chunk = stream.read(min(left, 64 * 1024))
                if not chunk:
                    break
                if drop_at is not None and sent + len(chunk) > drop_at:
                    self.wfile.write(chunk[: max(0, drop_at - sent)])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                self.wfile.write(chunk)
                sent += len(chunk)
                left -= len(chunk)

    def do_POST(self) -> None:
        if not self._record() or not self._authorized():
            return
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        self.body_read = True
        match = re.search(r"boundary=([^;\s]+)", self.headers.get("Content-Type", ""))
        if match is None or urlsplit(self.path).path != "/":
            self._reply(400, b"expected a multipart/form-data POST to /")
            return
        stored = []
        for name, content in _parse_multipart(body, match.group(1).encode()):
            target = self.server.target(name)
            if not name or target is None:
                self._reply(400, b"bad file name")
                return
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, temp = tempfile.mkstemp(dir=target.parent, prefix=".upload-")
            with os.fdopen(fd, "wb") as out:
                out.write(content)
            os.replace(temp, target)
            stored.append(name.lstrip("/"))
        self._reply(200, json.dumps(stored).encode(), {"Content-Type": "application/json"})

    def do_DELETE(self) -> None:
        if not self._record() or not self._authorized():
            return
        path = self._file()
        if path is None:
            return
        path.unlink()
        self._reply(200, b"{}", {"Content-Type": "application/json"})


@contextmanager
def serve(root: Path) -> Iterator[FileServer]:
    """A running server storing files under ``root``; stopped (and its thread joined) on exit."""
    root.mkdir(parents=True, exist_ok=True)
    server = FileServer(root)
    thread = threading.Thread(target=server.serve_forever, name="test-fileserver", daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
        shutil.rmtree(root, ignore_errors=True)
