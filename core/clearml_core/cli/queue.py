"""``clearml-core queue``: the queues daemons pull tasks from."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer

from clearml_core.cli.output import echo, echo_json, table

if TYPE_CHECKING:
    from clearml_core.controlplane import Queue

app = typer.Typer(help="Queues: create, list, delete, tag.", no_args_is_help=True)

JSON = typer.Option(False, "--json", help="Print JSON.")


def _plane() -> Any:
    from clearml_core.controlplane import open_control_plane

    return open_control_plane()


def _line(queue: Queue) -> str:
    tags = f" [{', '.join(queue.tags)}]" if queue.tags else ""
    return f"{queue.name}: {len(queue.tasks)} task(s){tags}"


@app.command("create")
def create(
    name: str = typer.Argument(..., help="Queue name."),
    tag: list[str] | None = typer.Option(None, "--tag", help="Tag, e.g. force_workers:on; repeatable."),
    exist_ok: bool = typer.Option(False, "--exist-ok", help="No error when it exists already."),
    as_json: bool = JSON,
) -> None:
    """Create an empty queue."""
    queue = _plane().create_queue(name, tags=tag or (), exist_ok=exist_ok)
    if as_json:
        echo_json(queue.to_dict())
    else:
        echo(_line(queue))


@app.command("list")
def list_(as_json: bool = JSON) -> None:
    """List queues with their tasks (next first) and tags."""
    queues = _plane().list_queues()
    if as_json:
        echo_json([queue.to_dict() for queue in queues])
        return
    rows = [(q.name, len(q.tasks), ", ".join(q.tags), q.tasks[0] if q.tasks else "") for q in queues]
    table(["NAME", "TASKS", "TAGS", "NEXT"], rows)


@app.command("delete")
def delete(
    name: str = typer.Argument(..., help="Queue name."),
    force: bool = typer.Option(
        False, "--force", help="Delete even a queue with tasks (they go back to created)."
    ),
    as_json: bool = JSON,
) -> None:
    """Delete a queue."""
    _plane().delete_queue(name, force=force)
    if as_json:
        echo_json({"name": name, "deleted": True})
    else:
        echo(f"{name}: deleted")


@app.command("tag")
def tag(
    name: str = typer.Argument(..., help="Queue name."),
    tags: list[str] | None = typer.Argument(None, help="Tags to add, e.g. force_workers:on."),
    remove: list[str] | None = typer.Option(None, "--remove", help="Tag to remove; repeatable."),
    as_json: bool = JSON,
) -> None:
    """Add or remove queue tags (none given: show them). force_workers:on|off overrides worker schedules."""
    queue = _plane().tag_queue(name, add=tags or (), remove=remove or ())
    if as_json:
        echo_json(queue.to_dict())
    else:
        echo(_line(queue))
