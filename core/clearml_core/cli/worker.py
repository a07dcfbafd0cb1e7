"""``clearml-core worker``: the daemons pulling from queues, and their runtime properties."""

from __future__ import annotations

import time

import typer

from clearml_core.cli.output import echo, echo_json, table
from clearml_core.errors import UserError

app = typer.Typer(help="Workers: list them, change their runtime properties.", no_args_is_help=True)

RUNTIME_VALUES = {"force": ("on", "off")}
"""Runtime properties whose values are checked; others are free-form."""


def _age(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 120:
        return f"{seconds:.0f} s ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min ago"
    return f"{seconds / 3600:.1f} h ago"


@app.command("list")
def list_(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """List workers: queues, running tasks, last heartbeat, runtime properties in force."""
    from clearml_core.controlplane import open_control_plane

    plane = open_control_plane()
    workers = plane.list_workers()
    now = plane.clock()
    if as_json:
        echo_json([worker.to_dict() for worker in workers])
        return
    rows = []
    for worker in workers:
        runtime = ", ".join(
            f"{key}={prop.value}" + (f" for {prop.expires - now:.0f} s" if prop.expires else "")
            for key, prop in worker.runtime_properties.items()
            if prop.active(now)
        )
        seen = _age(now - worker.last_heartbeat) if worker.last_heartbeat else ""
        rows.append((worker.id, ", ".join(worker.queues), ", ".join(worker.tasks), seen, runtime))
    table(["ID", "QUEUES", "TASKS", "LAST HEARTBEAT", "RUNTIME"], rows)


@app.command("set-runtime")
def set_runtime(
    worker_id: str = typer.Argument(..., help="Worker id (see `worker list`)."),
    properties: list[str] = typer.Argument(..., help="KEY=VALUE, e.g. force=on; KEY= removes it."),
    expiry: float | None = typer.Option(
        None, "--expiry", help="Seconds until the properties expire (default: until changed)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Override a worker at run time: force=on works outside its uptime, force=off stops taking tasks."""
    from clearml_core.controlplane import open_control_plane

    changes: list[tuple[str, str | None]] = []
    for pair in properties:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UserError(f"{pair!r}: write KEY=VALUE (force=on), or KEY= to remove it")
        allowed = RUNTIME_VALUES.get(key)
        if value and allowed and value not in allowed:
            raise UserError(f"{key}={value}: {key} takes {' or '.join(allowed)}")
        changes.append((key, value or None))
    if expiry is not None and expiry <= 0:
        raise UserError("--expiry takes a number of seconds above 0")
    plane = open_control_plane()
    expires = plane.clock() + expiry if expiry is not None else None
    worker = None
    for name, setting in changes:
        worker = plane.set_worker_runtime(worker_id, name, setting, expires=expires)
    assert worker is not None
    if as_json:
        echo_json(worker.to_dict())
        return
    now = plane.clock()
    active = [
        f"{key}={prop.value}"
        + (
            f" until {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(prop.expires))}"
            if prop.expires
            else ""
        )
        for key, prop in worker.runtime_properties.items()
        if prop.active(now)
    ]
    echo(f"{worker.id}: {', '.join(active) or 'no runtime properties'}")
