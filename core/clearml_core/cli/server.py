"""``clearml-core server``: a ClearML API server, file server and web page over the control plane,
and its access keys (``server credentials``). The server modules load inside the commands so
``--help`` stays fast."""

from __future__ import annotations

import signal
import threading
from typing import Any

import typer

from clearml_core.cli.output import echo, echo_json, table
from clearml_core.errors import UserError

app = typer.Typer(
    help="A server that ClearML's own SDK and clearml-agent use, over the control plane.",
    invoke_without_command=True,
)
credentials_app = typer.Typer(
    help="Access keys for SDKs and agents: create, list, revoke.", no_args_is_help=True
)
app.add_typer(credentials_app, name="credentials")

ROLE_HELP = "Serve only this role (repeatable): api (8008), files (8081), web (8080). Default: all three."


def _setup(control_plane: str | None) -> tuple[Any, Any, Any]:
    """The server's settings, the control plane, and their names for the start-up lines."""
    from clearml_core.controlplane import CLEARML_SCHEME_PREFIX, control_plane_url, open_control_plane
    from clearml_core.server.config import load_server_config, not_used_variables
    from clearml_core.server.settings import ServerSettings

    config = load_server_config()
    settings = ServerSettings.from_config(config)
    if settings.logging:
        _configure_logging(settings.logging)
    for name in not_used_variables():
        echo(
            f"warning: {name} is set, but this server keeps everything in the control plane and uses "
            "no MongoDB or Elasticsearch",
            err=True,
        )
    # api.api_server names a ClearML API server for clients, maybe this one: the server keeps its
    # tasks in agent.control_plane (or Redis, or the default file), never in another API server.
    url = control_plane or control_plane_url(api_server=False)
    if url.startswith(CLEARML_SCHEME_PREFIX):
        raise UserError(
            f"the server cannot keep its tasks on another ClearML API server ({url}); give it a store: "
            "--control-plane sqlite:///PATH or redis://HOST:PORT/DB"
        )
    plane = open_control_plane(url)
    return config, settings, plane


def _configure_logging(tree: dict[str, Any]) -> None:
    """``logging.conf`` replaces the log setup; every handler still masks secrets."""
    import logging
    import logging.config

    from clearml_core.config.redact import RedactingFilter

    try:
        logging.config.dictConfig({"version": 1, "disable_existing_loggers": False, **tree})
    except (ValueError, TypeError, AttributeError, ImportError) as error:
        raise UserError(f"logging.conf does not configure logging: {error}") from None
    for logger in [
        logging.getLogger(),
        *(logging.getLogger(name) for name in logging.root.manager.loggerDict),
    ]:
        for handler in getattr(logger, "handlers", []):
            handler.addFilter(RedactingFilter())


@app.callback()
def server(
    context: typer.Context,
    role: list[str] | None = typer.Option(None, "--role", metavar="ROLE", help=ROLE_HELP),
    host: str | None = typer.Option(
        None,
        "--host",
        metavar="IP",
        help="Listen on this address (default: the configured listen.ip, 127.0.0.1).",
    ),
    api_port: int | None = typer.Option(
        None, "--api-port", metavar="N", help="API port (apiserver.listen.port)."
    ),
    files_port: int | None = typer.Option(
        None, "--files-port", metavar="N", help="File server port (fileserver.listen.port)."
    ),
    web_port: int | None = typer.Option(
        None, "--web-port", metavar="N", help="Web page port (webserver.listen.port)."
    ),
    upload_folder: str | None = typer.Option(
        None,
        "--upload-folder",
        metavar="DIR",
        help="Where the file server keeps files (CLEARML_UPLOAD_FOLDER; default ~/.clearml-core/fileserver).",
    ),
    control_plane: str | None = typer.Option(
        None, "--control-plane", metavar="URL", help="Control plane to serve (default: agent.control_plane)."
    ),
    workers: int = typer.Option(
        1,
        "--workers",
        min=1,
        metavar="N",
        help="Processes serving the API (default 1): more use more cores under load. The file "
        "server and web page stay in one process.",
    ),
    main_pid: int | None = typer.Option(None, "--main-pid", hidden=True),
) -> None:
    """Serve ClearML's REST API (8008), a file server (8081) and a web page (8080).

    Configuration as ClearML server's: *.conf in /opt/clearml/config or CLEARML_CONFIG_DIR, and
    CLEARML__<FILE>__<PATH>=value overrides. See docs/server.md.
    """
    if context.invoked_subcommand is not None:
        return
    from clearml_core.server.app import (
        ROLES,
        build_context,
        preset_access_key,
        start_server,
    )
    from clearml_core.server.app import (
        upload_folder as folder_of,
    )

    roles = list(dict.fromkeys(role or ROLES))
    unknown = [r for r in roles if r not in ROLES]
    if unknown:
        raise UserError(f"unknown --role {', '.join(unknown)}; use api, files or web")
    options = ["--control-plane", control_plane] if control_plane else []
    if upload_folder:
        options += ["--upload-folder", upload_folder]
    _config, settings, plane = _setup(control_plane)
    ctx = build_context(settings, plane, folder_of(upload_folder))
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    ports = {k: v for k, v in (("api", api_port), ("files", files_port), ("web", web_port)) if v is not None}
    hosts = {r: host for r in roles} if host else None
    if main_pid is not None:
        _serve_as_worker(ctx, ports, hosts, main_pid, stop)
        return
    several = workers > 1 and "api" in roles
    if several:
        from clearml_core.server.workers import check_supported

        check_supported()
    preset = preset_access_key(ctx)
    running = start_server(ctx, roles, ports=ports, hosts=hosts, reuse_port=several)
    extra = None
    if several:
        from clearml_core.server.workers import ApiWorkers

        api = running.listeners["api"]
        extra = ApiWorkers(api.host, api.port, workers - 1, options)
        extra.start()
    echo(f"control plane: {plane.url}")
    for name, listener in running.listeners.items():
        processes = f" ({workers} processes)" if name == "api" and extra is not None else ""
        echo(f"{name}: {listener.url}{processes}")
    if "files" in running.listeners:
        echo(f"files are kept in {ctx.upload_folder}")
    if settings.fixed_users_enabled:
        echo(f"fixed users: {', '.join(user.username for user in settings.fixed_users)}")
    if preset:
        echo(f"access key {preset} registered from CLEARML_API_ACCESS_KEY")
    try:
        while not stop.wait(1.0 if extra is not None else None):
            if extra is not None:
                extra.check()
    finally:
        echo("stopping")
        if extra is not None:
            extra.stop()
        running.stop()
        plane.close()


def _serve_as_worker(
    ctx: Any, ports: dict[str, int], hosts: dict[str, str] | None, main_pid: int, stop: threading.Event
) -> None:
    """A worker process of ``--workers``: serve the API on the main process's port, quietly."""
    from clearml_core.server.app import start_server
    from clearml_core.server.workers import wait_as_worker

    running = start_server(ctx, ["api"], ports=ports, hosts=hosts, reuse_port=True, watchdog=False)
    try:
        wait_as_worker(stop, main_pid)
    finally:
        running.stop()
        ctx.plane.close()


def _owner(ctx: Any, user: str) -> tuple[str, str]:
    from clearml_core.server.fixed_users import user_id

    settings = ctx.settings
    if settings.fixed_users_enabled:
        fixed = {u.username: u for u in settings.fixed_users}
        if user not in fixed:
            raise UserError(
                f"{user!r} is not one of the fixed users ({', '.join(sorted(fixed))}); pass --user with one of them"
            )
        name = fixed[user].name
    else:
        name = user
    owner = user_id(settings.company_id, user)
    ctx.accounts.ensure_user(owner, name)
    return owner, name


def _context(control_plane: str | None) -> Any:
    from clearml_core.server.app import build_context, upload_folder

    _config, settings, plane = _setup(control_plane)
    return build_context(settings, plane, upload_folder())


CONTROL_PLANE = typer.Option(
    None, "--control-plane", metavar="URL", help="Control plane (default: agent.control_plane)."
)


@credentials_app.command("create")
def create(
    user: str = typer.Option(
        "default", "--user", metavar="NAME", help="Owner: a fixed user's name when they are on."
    ),
    label: str = typer.Option("", "--label", help="A note shown in `credentials list`."),
    control_plane: str | None = CONTROL_PLANE,
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Make an access key and print it with its secret (shown this once; only a digest is kept)."""
    ctx = _context(control_plane)
    owner, name = _owner(ctx, user)
    access_key, secret = ctx.accounts.create_key(owner, label=label)
    if as_json:
        echo_json({"access_key": access_key, "secret_key": secret, "user": name, "label": label})
        return
    echo(f"access key for {name} (the secret is shown once; keep it now):")
    echo("api {")
    echo("    credentials {")
    echo(f'        access_key: "{access_key}"')
    echo(f'        secret_key: "{secret}"')
    echo("    }")
    echo("}")


@credentials_app.command("list")
def list_(
    control_plane: str | None = CONTROL_PLANE,
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """List access keys with their owners and last use (never a secret)."""
    from clearml_core.server.taskview import iso

    ctx = _context(control_plane)
    users = ctx.accounts.users()
    keys = ctx.accounts.all_keys()
    rows = [
        {
            "access_key": key.access_key,
            "user": str(users.get(key.user, {}).get("name") or key.user),
            "created": iso(key.created),
            "last_used": iso(key.last_used),
            "last_used_from": key.last_used_from,
            "label": key.label,
        }
        for key in keys
    ]
    if as_json:
        echo_json(rows)
        return
    table(
        ["ACCESS KEY", "USER", "CREATED", "LAST USED", "LABEL"],
        [(r["access_key"], r["user"], r["created"], r["last_used"] or "never", r["label"]) for r in rows],
    )


@credentials_app.command("revoke")
def revoke(
    access_key: str = typer.Argument(..., help="The access key to remove."),
    control_plane: str | None = CONTROL_PLANE,
) -> None:
    """Remove an access key: it signs in no more (tokens it got stay good until they expire)."""
    ctx = _context(control_plane)
    if not ctx.accounts.revoke_key(None, access_key):
        raise UserError(f"no access key {access_key!r}; `clearml-core server credentials list` shows them")
    echo(f"{access_key}: revoked")
