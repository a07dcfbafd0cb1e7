"""Running the server: the context one process shares, its roles, and the watchdog.

``clearml-core server`` runs every role in one process (API on 8008, file server on 8081, web
page on 8080), or the roles named with ``--role``; processes of one control plane (the same
SQLite file on one machine, or one Redis) serve the same queues, so several of them can stand
behind one load balancer.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from clearml_core.controlplane import ControlPlane
from clearml_core.controlplane.watchdog import Watchdog, WatchdogSettings
from clearml_core.server.accounts import DEFAULT_USER, DEFAULT_USER_NAME, Accounts
from clearml_core.server.api import ApiApplication
from clearml_core.server.auth import Authenticator
from clearml_core.server.context import ServerContext
from clearml_core.server.fixed_users import user_id
from clearml_core.server.httpd import Application, Listener
from clearml_core.server.settings import ServerSettings

log = logging.getLogger("clearml_core.server")

ROLES = ("api", "files", "web")
UPLOAD_FOLDER_VARIABLES = ("CLEARML_UPLOAD_FOLDER", "TRAINS_UPLOAD_FOLDER")
DEFAULT_UPLOAD_FOLDER = "~/.clearml-core/fileserver"
ACCESS_KEY_VARIABLE = "CLEARML_API_ACCESS_KEY"
SECRET_KEY_VARIABLE = "CLEARML_API_SECRET_KEY"  # noqa: S105  (the variable's name)


def upload_folder(explicit: str | None = None) -> Path:
    """``--upload-folder``, else ``CLEARML_UPLOAD_FOLDER``, else ``~/.clearml-core/fileserver``."""
    named = explicit or next((os.environ[v] for v in UPLOAD_FOLDER_VARIABLES if os.environ.get(v)), None)
    return Path(os.path.expandvars(named or DEFAULT_UPLOAD_FOLDER)).expanduser().absolute()


def build_context(settings: ServerSettings, plane: ControlPlane, folder: Path) -> ServerContext:
    accounts = Accounts(plane)
    auth = Authenticator(settings, accounts, accounts.token_secret(settings.token_secret))
    return ServerContext(settings=settings, plane=plane, accounts=accounts, auth=auth, upload_folder=folder)


def preset_access_key(ctx: ServerContext) -> str | None:
    """Register ``CLEARML_API_ACCESS_KEY`` / ``CLEARML_API_SECRET_KEY`` (the default user's)."""
    access_key = os.environ.get(ACCESS_KEY_VARIABLE, "").strip()
    secret = os.environ.get(SECRET_KEY_VARIABLE, "").strip()
    if not access_key and not secret:
        return None
    if not access_key or not secret:
        from clearml_core.errors import ConfigError

        missing = ACCESS_KEY_VARIABLE if not access_key else SECRET_KEY_VARIABLE
        raise ConfigError(f"{missing} is not set, but its pair is; set both (or neither)")
    owner = user_id(ctx.settings.company_id, DEFAULT_USER)
    ctx.accounts.ensure_user(owner, DEFAULT_USER_NAME)
    ctx.accounts.preset_key(access_key, secret, owner, label=f"from {ACCESS_KEY_VARIABLE}")
    return access_key


@dataclass
class RunningServer:
    """The listeners of one process and its background chores; :meth:`stop` ends them.

    ``stopping`` is the context's own event, so the calls that wait see the stop too."""

    ctx: ServerContext
    listeners: dict[str, Listener]
    stopping: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)

    def url(self, role: str) -> str:
        return self.listeners[role].url

    def stop(self) -> None:
        self.stopping.set()
        # each listener notices a stop within its poll interval: stop them side by side
        stoppers = [threading.Thread(target=listener.stop) for listener in self.listeners.values()]
        for stopper in stoppers:
            stopper.start()
        for stopper in stoppers:
            stopper.join()
        for thread in self.threads:
            thread.join(timeout=10)


def _watch(ctx: ServerContext, stopping: threading.Event) -> None:
    settings = ctx.settings
    watchdog = Watchdog(
        ctx.plane,
        WatchdogSettings(
            threshold_sec=settings.watchdog_threshold_sec,
            watch_interval_sec=settings.watchdog_interval_sec,
            final_status="stopped",
            reason_template="Forced stop (non-responsive): {who} gave no sign of life for {silent:.0f} s "
            "(services.tasks.non_responsive_tasks_watchdog.threshold_sec = {threshold:g})",
        ),
    )
    while not stopping.is_set():
        try:
            watchdog.maybe_check()
        except Exception:  # the store was away: try again next interval
            log.exception("the non-responsive task watchdog could not check the tasks")
        stopping.wait(min(settings.watchdog_interval_sec, 60.0))


def start_server(
    ctx: ServerContext,
    roles: Sequence[str] = ROLES,
    *,
    ports: dict[str, int] | None = None,
    hosts: dict[str, str] | None = None,
    reuse_port: bool = False,
    watchdog: bool = True,
) -> RunningServer:
    """Listen for ``roles`` (``ports`` / ``hosts`` override the configured ones; port 0 picks a
    free one; ``reuse_port``: share the API's port with other processes, see
    :mod:`~clearml_core.server.workers`) and start the watchdog with the API role (unless
    ``watchdog`` is False: a worker process leaves it to the main one)."""
    from clearml_core.server.fileserver import FileApplication
    from clearml_core.server.web import WebApplication

    settings = ctx.settings
    configured = {"api": settings.api, "files": settings.files, "web": settings.web}
    apps: dict[str, Application] = {}
    for role in roles:
        if role == "api":
            apps[role] = ApiApplication(ctx)
        elif role == "files":
            apps[role] = FileApplication(ctx)
        elif role == "web":
            apps[role] = WebApplication(ctx)
        else:
            raise ValueError(f"unknown role {role!r}")
    listeners: dict[str, Listener] = {}
    try:
        for role, app in apps.items():
            host = (hosts or {}).get(role, configured[role].ip)
            port = (ports or {}).get(role, configured[role].port)
            listeners[role] = Listener(app, host, port, reuse_port=reuse_port and role == "api")
    except BaseException:
        for listener in listeners.values():
            listener.stop()
        raise
    ctx.stopping.clear()  # a context may be served again after a stop
    running = RunningServer(ctx, listeners, stopping=ctx.stopping)
    for listener in listeners.values():
        listener.start()
    if "api" in roles and settings.watchdog_enabled and watchdog:
        thread = threading.Thread(target=_watch, args=(ctx, running.stopping), name="watchdog", daemon=True)
        thread.start()
        running.threads.append(thread)
    return running


__all__ = [
    "ROLES",
    "RunningServer",
    "build_context",
    "preset_access_key",
    "start_server",
    "upload_folder",
]
