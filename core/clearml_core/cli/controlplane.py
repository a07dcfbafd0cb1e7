"""``clearml-core controlplane``: moving between control planes (the embedded file, a shared Redis)."""

from __future__ import annotations

import os

import typer

from clearml_core.cli.output import echo, echo_json

app = typer.Typer(
    help="Control planes: copy queues and waiting tasks from one to another.", no_args_is_help=True
)


@app.command("migrate")
def migrate(
    source: str = typer.Option(..., "--from", metavar="URL", help="Control plane to copy from (only read)."),
    target: str = typer.Option(..., "--to", metavar="URL", help="Control plane to copy into."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Copy every queue and every waiting (created or queued) task, with their ids; running it
    again copies only what is missing.

    $VAR and ${VAR} in the URLs are expanded here, so a password can stay out of the command line
    (and `ps`): --to 'redis://:${REDIS_PASSWORD}@host:6379/0'.
    """
    from clearml_core.controlplane import open_control_plane
    from clearml_core.controlplane.migrate import migrate as run_migration
    from clearml_core.errors import UserError

    source_url, target_url = os.path.expandvars(source), os.path.expandvars(target)
    # both open before anything is written: a bad URL or an unreachable store changes nothing
    with open_control_plane(source_url) as origin, open_control_plane(target_url) as destination:
        if origin.url == destination.url:
            raise UserError(f"--from and --to name the same control plane ({origin.url}); nothing to copy")
        report = run_migration(origin, destination)
    if as_json:
        echo_json(report.to_dict())
        return
    left = ", ".join(f"{count} {status}" for status, count in sorted(report.tasks_left.items())) or "none"
    echo(f"from {report.source} to {report.target}")
    echo(f"queues: {len(report.queues_created)} created, {len(report.queues_existing)} already there")
    echo(
        f"tasks: {len(report.tasks_copied)} copied ({len(report.tasks_enqueued)} enqueued), "
        f"{len(report.tasks_existing)} already there; left behind (ran or running): {left}"
    )
