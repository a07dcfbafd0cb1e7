"""Real git repositories and real git servers on 127.0.0.1 for the VCS tests.

* :class:`Repos` makes repositories with commits, branches, tags and submodules.
* ``git_daemon``: ``git daemon --export-all`` serving a folder over ``git://``.
* ``http_git``: ``git http-backend`` behind a small threaded HTTP server with Basic auth, which
  records the ``Authorization`` headers it saw and can hold requests until a test releases them.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from clearml_core.config import Config
from clearml_core.settings import load_config
from clearml_core.testing.servers import free_port, wait_for_port

IDENTITY = {
    "GIT_AUTHOR_NAME": "Test",
    "GIT_AUTHOR_EMAIL": "test@example.com",
    "GIT_COMMITTER_NAME": "Test",
    "GIT_COMMITTER_EMAIL": "test@example.com",
}


def git(*args: str, cwd: Path | None = None, check: bool = True) -> str:
    env = {**os.environ, **IDENTITY, "GIT_CONFIG_NOSYSTEM": "1"}
    result = subprocess.run(
        ["git", "-c", "protocol.file.allow=always", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {result.stderr}")
    return result.stdout.strip()


class Repos:
    """Repositories under one folder."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def create(self, name: str, files: dict[str, str | None]) -> Path:
        """A repository with one commit of ``files`` on ``main``."""
        path = self.root / name
        path.mkdir(parents=True)
        git("init", "-q", "-b", "main", cwd=path)
        self.commit(path, files, "first")
        return path

    def commit(self, repo: Path, files: dict[str, str | None], message: str = "change") -> str:
        for name, text in files.items():
            target = repo / name
            if text is None:
                target.unlink()
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        git("add", "-A", cwd=repo)
        git("commit", "-q", "--allow-empty", "-m", message, cwd=repo)
        return git("rev-parse", "HEAD", cwd=repo)

    def bare(self, repo: Path, name: str | None = None) -> Path:
        """A bare copy of ``repo`` (what a server serves)."""
        target = self.root / (name or f"{repo.name}.git")
        git("clone", "-q", "--bare", str(repo), str(target))
        git("config", "http.receivepack", "true", cwd=target)
        return target

    def head(self, repo: Path, ref: str = "HEAD") -> str:
        return git("rev-parse", ref, cwd=repo)


@pytest.fixture
def repos(tmp_path: Path) -> Repos:
    return Repos(tmp_path / "repos")


def make_config(clearml_conf: Path, text: str) -> Config:
    clearml_conf.write_text(text, encoding="utf-8")
    return load_config()


class GitDaemon:
    def __init__(self, base: Path, port: int, process: subprocess.Popen[bytes]) -> None:
        self.base = base
        self.port = port
        self.process = process

    def url(self, name: str) -> str:
        return f"git://127.0.0.1:{self.port}/{name}"


@pytest.fixture
def git_daemon(tmp_path: Path) -> Iterator[GitDaemon]:
    base = tmp_path / "served-git"
    base.mkdir()
    port = free_port()
    process = subprocess.Popen(
        [
            "git", "daemon", "--reuseaddr", f"--base-path={base}", "--export-all",
            "--listen=127.0.0.1", f"--port={port}", str(base),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_for_port(port, process, 20.0, name="git daemon")
        yield GitDaemon(base, port, process)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


class HttpGit:
    """``git http-backend`` over HTTP with Basic auth (``user`` / ``password``) on 127.0.0.1;
    ``accepted`` takes more ``Authorization`` values (a bearer token, as Azure DevOps does)."""

    def __init__(self, root: Path, user: str, password: str) -> None:
        self.root = root
        self.user = user
        self.password = password
        self.authorizations: list[str] = []
        self.accepted: list[str] = []
        self.requests: list[str] = []
        self.hold = threading.Event()
        self.hold.set()  # set: requests go through; clear it to hold them
        self.held = threading.Event()
        self.server: ThreadingHTTPServer | None = None

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.server_address[1])

    def url(self, name: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}/{name}"

    def handler(self) -> type[BaseHTTPRequestHandler]:
        backend = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                self._serve()

            def do_POST(self) -> None:
                self._serve()

            def _serve(self) -> None:
                backend.requests.append(self.path)
                header = self.headers.get("Authorization", "")
                backend.authorizations.append(header)
                if not backend.hold.is_set():
                    backend.held.set()
                    backend.hold.wait(30)
                expected = "Basic " + base64.b64encode(f"{backend.user}:{backend.password}".encode()).decode()
                if header != expected and header not in backend.accepted:
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", 'Basic realm="git"')
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                path, _, query = self.path.partition("?")
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                env = {
                    "PATH": os.environ.get("PATH", ""),
                    "GIT_PROJECT_ROOT": str(backend.root),
                    "GIT_HTTP_EXPORT_ALL": "1",
                    "REQUEST_METHOD": self.command,
                    "PATH_INFO": path,
                    "QUERY_STRING": query,
                    "CONTENT_TYPE": self.headers.get("Content-Type", ""),
                    "CONTENT_LENGTH": str(len(body)),
                    "REMOTE_USER": backend.user,
                    "REMOTE_ADDR": "127.0.0.1",
                    "GIT_PROTOCOL": self.headers.get("Git-Protocol", ""),
                    "HTTP_CONTENT_ENCODING": self.headers.get("Content-Encoding", ""),
                }
                completed = subprocess.run(
                    ["git", "http-backend"], input=body, capture_output=True, env=env, check=False
                )
                head, _, payload = completed.stdout.partition(b"\r\n\r\n")
                status = 200
                headers: list[tuple[str, str]] = []
                for line in head.decode("latin-1").split("\r\n"):
                    name, _, value = line.partition(":")
                    if name.lower() == "status":
                        status = int(value.strip().split()[0])
                    elif name:
                        headers.append((name, value.strip()))
                self.send_response(status)
                for name, value in headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        return Handler


@pytest.fixture
def http_git(tmp_path: Path) -> Iterator[HttpGit]:
    root = tmp_path / "served-http"
    root.mkdir()
    backend = HttpGit(root, "alice", "s3cr3t-Pa55word")
    server = ThreadingHTTPServer(("127.0.0.1", 0), backend.handler())
    server.daemon_threads = True
    backend.server = server
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield backend
    finally:
        backend.hold.set()
        server.shutdown()
        server.server_close()


def serve(repos: Repos, repo: Path, folder: Path, name: str) -> Path:
    """Put a bare copy of ``repo`` at ``folder/name`` (under a git daemon's or HTTP server's root)."""
    target = folder / name
    shutil.rmtree(target, ignore_errors=True)
    git("clone", "-q", "--bare", str(repo), str(target))
    return target
