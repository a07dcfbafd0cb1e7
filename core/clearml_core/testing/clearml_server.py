"""A clearml-core server on loopback for tests: free ports, its own control plane, an access key.

::

    from clearml_core.testing.clearml_server import run_clearml_server

    with run_clearml_server(tmp_path / "server") as server:
        server.api_url, server.files_url, server.web_url      # http://127.0.0.1:PORT
        server.access_key, server.secret_key                  # registered at start
        (tmp_path / "clearml.conf").write_text(server.clearml_conf())

The server is the real command (``clearml-core server``) in a process of its own, stopped by its
PID when the block ends; its output is in ``server.log``. ``config`` writes ClearML server
configuration files (``{"apiserver.conf": "…"}``) into its configuration folder; ``env`` adds
variables (``CLEARML__APISERVER__…`` overrides). The ``clearml_server`` pytest fixture of
:mod:`clearml_core.testing.pytest_plugin` yields one per test.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import os
import secrets
import string
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from clearml_core.testing.servers import free_port, server_process, wait_for_port

__all__ = ["ApiClient", "ApiReply", "ClearMLServer", "run_clearml_server"]


@dataclass(frozen=True)
class ClearMLServer:
    """A running test server: where it listens, its credentials, where it keeps things."""

    api_url: str
    files_url: str
    web_url: str
    access_key: str
    secret_key: str
    control_plane: str
    upload_folder: Path
    config_dir: Path
    log: Path
    pid: int

    def clearml_conf(self, extra: str = "") -> str:
        """A clearml.conf (for ClearML's SDK, clearml-agent or clearml-core) that uses this server."""
        return (
            "api {\n"
            f'  api_server: "{self.api_url}"\n'
            f'  web_server: "{self.web_url}"\n'
            f'  files_server: "{self.files_url}"\n'
            f'  credentials {{ access_key: "{self.access_key}", secret_key: "{self.secret_key}" }}\n'
            "}\n" + extra
        )

    def environment(self) -> dict[str, str]:
        """The variables that point ClearML's clients at this server (instead of a clearml.conf)."""
        return {
            "CLEARML_API_HOST": self.api_url,
            "CLEARML_WEB_HOST": self.web_url,
            "CLEARML_FILES_HOST": self.files_url,
            "CLEARML_API_ACCESS_KEY": self.access_key,
            "CLEARML_API_SECRET_KEY": self.secret_key,
        }


@dataclass
class ApiReply:
    """An answer of the API: HTTP status, the envelope's ``meta`` and ``data``, and its headers."""

    status: int
    meta: dict[str, Any]
    data: Any
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def code(self) -> tuple[int, int]:
        return int(self.meta.get("result_code", self.status)), int(self.meta.get("result_subcode", 0))

    @property
    def message(self) -> str:
        return str(self.meta.get("result_msg", ""))


class ApiClient:
    """A plain client of the API (``http.client``, one kept-alive connection) for tests and probes.

    ``login()`` gets a token with the key pair (Basic auth), as ClearML's clients do; ``call``
    sends a JSON body to ``/v<version>/<service>.<action>`` with that token.
    """

    def __init__(
        self, url: str, access_key: str = "", secret_key: str = "", *, version: str | None = None
    ) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.prefix = parts.path.rstrip("/")
        self.access_key, self.secret_key = access_key, secret_key
        self.version = version
        self.token: str | None = None
        self._conn: http.client.HTTPConnection | None = None

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def request(
        self, method: str, path: str, body: bytes = b"", headers: Mapping[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        for attempt in (0, 1):
            if self._conn is None:
                self._conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
            try:
                self._conn.request(method, self.prefix + path, body=body, headers=dict(headers or {}))
                response = self._conn.getresponse()
                data = response.read()
                if response.will_close:
                    self.close()
                return response.status, {k.lower(): v for k, v in response.getheaders()}, data
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.close()
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def basic(self, key: str | None = None, secret: str | None = None) -> dict[str, str]:
        pair = f"{self.access_key if key is None else key}:{self.secret_key if secret is None else secret}"
        return {"Authorization": "Basic " + base64.b64encode(pair.encode()).decode()}

    def login(self) -> str:
        reply = self.call("auth.login", headers=self.basic())
        if reply.status != 200:
            raise RuntimeError(f"auth.login failed: {reply.status} {reply.message}")
        self.token = str(reply.data["token"])
        return self.token

    def call(
        self,
        name: str,
        data: Mapping[str, Any] | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        version: str | None = None,
        method: str = "POST",
    ) -> ApiReply:
        sent = {"Content-Type": "application/json"}
        if self.token and not headers:
            sent["Authorization"] = f"Bearer {self.token}"
        sent.update(headers or {})
        wanted = version or self.version
        path = f"/v{wanted}/{name}" if wanted else f"/{name}"
        status, got, body = self.request(method, path, json.dumps(dict(data or {})).encode(), sent)
        try:
            envelope = json.loads(body)
        except ValueError:
            return ApiReply(
                status, {"result_code": status, "result_msg": body.decode(errors="replace")}, None, got
            )
        return ApiReply(status, envelope.get("meta") or {}, envelope.get("data"), got)


def _random(length: int) -> str:
    alphabet = string.ascii_uppercase + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(length))


@contextlib.contextmanager
def run_clearml_server(
    folder: Path,
    *,
    control_plane: str | None = None,
    config: Mapping[str, str] | None = None,
    env: Mapping[str, str] | None = None,
    roles: Sequence[str] = ("api", "files", "web"),
    debug: bool = False,
    timeout: float = 60,
) -> Iterator[ClearMLServer]:
    """Start ``clearml-core server`` on free 127.0.0.1 ports; stop it when the block ends.

    ``control_plane`` defaults to a SQLite file in ``folder``; ``debug`` logs every call.
    """
    folder.mkdir(parents=True, exist_ok=True)
    config_dir = folder / "config"
    config_dir.mkdir(exist_ok=True)
    for name, text in (config or {}).items():
        target = config_dir / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    plane = control_plane or f"sqlite:///{folder / 'state.db'}"
    upload = folder / "files"
    ports = {role: free_port() for role in ("api", "files", "web")}
    access_key, secret_key = _random(30), secrets.token_urlsafe(30)
    clearml_conf = folder / "server-clearml.conf"
    clearml_conf.write_text("", encoding="utf-8")
    variables = {k: v for k, v in os.environ.items() if not k.startswith(("CLEARML", "TRAINS"))}
    variables.update(
        CLEARML_CONFIG_DIR=str(config_dir),
        CLEARML_CONFIG_FILE=str(clearml_conf),
        CLEARML_UPLOAD_FOLDER=str(upload),
        CLEARML_API_ACCESS_KEY=access_key,
        CLEARML_API_SECRET_KEY=secret_key,
    )
    variables.update(env or {})
    command = [sys.executable, "-m", "clearml_core.cli.main", *(["--debug"] if debug else []), "server"]
    command += ["--control-plane", plane]
    for role in roles:
        command += ["--role", role, f"--{role}-port", str(ports[role])]
    log = folder / "server.log"
    first = roles[0]
    with server_process(
        command, ports[first], log=log, name="clearml-core server", env=variables, timeout=timeout
    ) as process:
        for role in roles[1:]:
            wait_for_port(ports[role], process, timeout, name="clearml-core server")
        yield ClearMLServer(
            api_url=f"http://127.0.0.1:{ports['api']}",
            files_url=f"http://127.0.0.1:{ports['files']}",
            web_url=f"http://127.0.0.1:{ports['web']}",
            access_key=access_key,
            secret_key=secret_key,
            control_plane=plane,
            upload_folder=upload,
            config_dir=config_dir,
            log=log,
            pid=process.pid,
        )
