"""An in-process server for the API's own tests: fast to start, its context at hand.

The tests of ClearML's real clients use the real command instead (the ``clearml_server``
fixture of clearml_core.testing, a process of its own).
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clearml_core.controlplane.sqlite import SQLiteControlPlane
from clearml_core.server.accounts import DEFAULT_USER
from clearml_core.server.app import RunningServer, build_context, start_server
from clearml_core.server.context import ServerContext
from clearml_core.server.fixed_users import user_id
from clearml_core.server.settings import Listen, ServerSettings
from clearml_core.testing.clearml_server import ApiClient


@dataclass
class LocalServer:
    running: RunningServer
    access_key: str
    secret_key: str

    @property
    def ctx(self) -> ServerContext:
        return self.running.ctx

    @property
    def api_url(self) -> str:
        return self.running.url("api")

    @property
    def files_url(self) -> str:
        return self.running.url("files")

    @property
    def web_url(self) -> str:
        return self.running.url("web")

    def client(self, *, login: bool = True, **kwargs: Any) -> ApiClient:
        client = ApiClient(self.api_url, self.access_key, self.secret_key, **kwargs)
        if login:
            client.login()
        return client

    def new_key(self, user: str) -> tuple[str, str]:
        owner = user_id(self.ctx.settings.company_id, user)
        self.ctx.accounts.ensure_user(owner, user)
        return self.ctx.accounts.create_key(owner)


@contextlib.contextmanager
def local_server(folder: Path, **settings: Any) -> Iterator[LocalServer]:
    """All three roles on free ports of 127.0.0.1 over a fresh SQLite control plane."""
    folder.mkdir(parents=True, exist_ok=True)
    loopback = Listen("127.0.0.1", 0)
    configured = dataclasses.replace(ServerSettings(api=loopback, files=loopback, web=loopback), **settings)
    plane = SQLiteControlPlane(folder / "state.db")
    ctx = build_context(configured, plane, folder / "files")
    owner = user_id(configured.company_id, DEFAULT_USER)
    ctx.accounts.ensure_user(owner, "Default User")
    access_key, secret = ctx.accounts.create_key(owner)
    running = start_server(ctx)
    try:
        yield LocalServer(running, access_key, secret)
    finally:
        running.stop()
        plane.close()
