"""``clearml-core task``: define, queue, watch and manage tasks.

Imports of the control plane happen inside the commands so ``--help`` stays fast.
"""

from __future__ import annotations

import shlex
from datetime import datetime
from typing import TYPE_CHECKING, Any

import typer

from clearml_core.cli.output import echo, echo_json, table

if TYPE_CHECKING:
    from clearml_core.controlplane import LogEvent, Task

app = typer.Typer(help="Tasks: create, list, show, logs, abort, enqueue, dequeue, clone, reset, delete.")

JSON = typer.Option(False, "--json", help="Print JSON.")


def _split(values: list[str] | None) -> list[str]:
    """Each value of a repeatable option is split like a shell line: --args '--lr 0.1' --args -v."""
    words: list[str] = []
    for value in values or []:
        words.extend(shlex.split(value))
    return words


def when(stamp: float | None) -> str:
    """A timestamp as local time, seconds precision; empty for None."""
    return datetime.fromtimestamp(stamp).strftime("%Y-%m-%d %H:%M:%S") if stamp else ""


def _print_task(task: Task, as_json: bool, line: str) -> None:
    if as_json:
        from clearml_core.tasks import task_view

        echo_json(task_view(task))
    else:
        echo(line)


@app.command("create")
def create(
    name: str = typer.Option(..., "--name", help="Task name."),
    project: str = typer.Option("", "--project", help="Project the task belongs to."),
    repo: str | None = typer.Option(
        None,
        "--repo",
        help="Git repository URL to clone, or a path inside a local working copy (records its remote, "
        "branch, commit and uncommitted changes).",
    ),
    branch: str = typer.Option("", "--branch", help="Branch to check out (default: the repository's)."),
    commit: str = typer.Option("", "--commit", help="Commit to check out (default: the branch head)."),
    folder: str | None = typer.Option(
        None, "--folder", help="Local folder, copied into the task's working dir when it runs."
    ),
    script: str = typer.Option(..., "--script", help="Entry script, relative to the repository or folder."),
    args: list[str] | None = typer.Option(
        None, "--args", help="Arguments of the script, split like a shell line; repeatable."
    ),
    requirements: str | None = typer.Option(None, "--requirements", help="requirements.txt to install."),
    packages: list[str] | None = typer.Option(
        None, "--packages", help="Extra pip requirements ('numpy>=1.26 pandas'); repeatable."
    ),
    docker: str = typer.Option("", "--docker", help="Docker image to run the task in."),
    docker_args: list[str] | None = typer.Option(
        None, "--docker-args", help="Arguments of `docker run`, split like a shell line; repeatable."
    ),
    output_uri: str = typer.Option("", "--output-uri", help="Where the task's output folder is uploaded."),
    timeout: float | None = typer.Option(None, "--timeout", help="Stop the task after S seconds."),
    env: list[str] | None = typer.Option(None, "--env", help="Environment variable K=V; repeatable."),
    queue: str | None = typer.Option(None, "--queue", help="Enqueue the task right away."),
    as_json: bool = JSON,
) -> None:
    """Define a task; prints its id."""
    from clearml_core.tasks import create_task, parse_env

    task = create_task(
        name,
        script=script,
        project=project,
        repo=repo,
        branch=branch,
        commit=commit,
        folder=folder,
        args=_split(args),
        env=parse_env(env or []),
        requirements=_split(packages),
        requirements_file=requirements,
        docker_image=docker,
        docker_args=_split(docker_args),
        output_uri=output_uri,
        timeout=timeout,
        queue=queue,
    )
    _print_task(task, as_json, task.id)


@app.command("list")
def list_(
    status: list[str] | None = typer.Option(None, "--status", help="Only these statuses; repeatable."),
    queue: str | None = typer.Option(None, "--queue", help="Only tasks of this queue."),
    project: str | None = typer.Option(None, "--project", help="Only tasks of this project."),
    name: str | None = typer.Option(None, "--name", help="Only tasks whose name contains this."),
    limit: int | None = typer.Option(None, "--limit", help="At most N tasks."),
    as_json: bool = JSON,
) -> None:
    """List tasks, oldest first."""
    from clearml_core.tasks import list_tasks, task_view

    tasks = list_tasks(status=status or None, queue=queue, project=project, name=name, limit=limit)
    if as_json:
        echo_json([task_view(task) for task in tasks])
        return
    rows = [
        (
            task.id,
            task.name,
            task.project,
            task.status,
            task.queue or "",
            task.worker or "",
            when(task.created),
        )
        for task in tasks
    ]
    table(["ID", "NAME", "PROJECT", "STATUS", "QUEUE", "WORKER", "CREATED"], rows)


def _describe(task: Task) -> list[tuple[str, Any]]:
    from clearml_core.tasks import task_view

    view = task_view(task)
    script = view["script"]
    rows: list[tuple[str, Any]] = [
        ("id", task.id),
        ("name", task.name),
        ("project", task.project),
        ("status", task.status),
        ("status reason", task.status_reason),
        ("queue", task.queue),
        ("worker", task.worker),
    ]
    if script["repository"]:
        rows += [
            ("repository", script["repository"]),
            ("branch", script["branch"]),
            ("commit", script["commit"]),
            ("uncommitted diff", f"{len(task.script.diff.splitlines())} lines" if task.script.diff else ""),
        ]
    if script["folder"]:
        rows.append(("folder", script["folder"]))
    rows += [
        ("working dir", script["working_dir"]),
        ("entry point", script["entry_point"]),
        ("arguments", shlex.join(task.parameters.argv)),
    ]
    rows += [(f"env {key}", value) for key, value in view["parameters"]["env"].items()]
    rows += [
        ("requirements", ", ".join(task.requirements.pip)),
        ("docker image", task.container.image),
        ("docker args", shlex.join(task.container.arguments)),
        ("output uri", view["output_uri"]),
        ("timeout", f"{task.timeout:g} s" if task.timeout else ""),
        ("parent", task.parent),
        ("created", when(task.created)),
        ("queued", when(task.queued)),
        ("started", when(task.started)),
        ("ended", when(task.ended)),
        ("last update", when(task.last_update)),
        ("exit code", task.exit_code),
        ("abort requested", "yes" if task.abort_requested else ""),
    ]
    return [(key, value) for key, value in rows if value not in (None, "")]


@app.command("show")
def show(task_id: str = typer.Argument(..., help="Task id."), as_json: bool = JSON) -> None:
    """Show a task's definition and state (secret-looking env values masked)."""
    from clearml_core.tasks import get_task, task_view

    task = get_task(task_id)
    if as_json:
        echo_json(task_view(task))
        return
    rows = _describe(task)
    width = max(len(key) for key, _value in rows)
    for key, value in rows:
        echo(f"{key + ':':<{width + 1}} {value}")
    if task.last_log_lines and _ended(task):
        echo("last output:")
        for line in task.last_log_lines:
            echo(f"  {line}")


def _ended(task: Task) -> bool:
    from clearml_core.controlplane import FINAL_STATUSES, TaskStatus

    return TaskStatus(task.status) in FINAL_STATUSES


def _print_events(events: list[LogEvent], as_json: bool) -> None:
    import json

    for event in events:
        if as_json:
            echo(json.dumps(event.to_dict(), ensure_ascii=False))
        else:
            for line in event.lines:
                echo(line)


@app.command("logs")
def logs(
    task_id: str = typer.Argument(..., help="Task id."),
    follow: bool = typer.Option(False, "--follow", "-f", help="Wait for new lines until the task ends."),
    since: int = typer.Option(0, "--since", help="Only batches after this sequence number."),
    as_json: bool = JSON,
) -> None:
    """Print a task's output (with --json: one JSON object per batch of lines)."""
    from clearml_core.tasks import follow_logs, read_logs

    if not follow:
        _print_events(read_logs(task_id, after=since), as_json)
        return
    for event in follow_logs(task_id, after=since):
        _print_events([event], as_json)


@app.command("abort")
def abort(
    task_id: str = typer.Argument(..., help="Task id."),
    force: bool = typer.Option(
        False, "--force", help="Mark a running task stopped now, without waiting for its worker."
    ),
    as_json: bool = JSON,
) -> None:
    """Stop a task: a waiting one at once, a running one through its worker."""
    from clearml_core.controlplane import TaskStatus
    from clearml_core.tasks import abort_task

    task = abort_task(task_id, force=force)
    if task.status == TaskStatus.IN_PROGRESS:
        line = f"{task.id}: abort requested; worker {task.worker} stops it"
    else:
        line = f"{task.id}: {task.status}"
    _print_task(task, as_json, line)


@app.command("enqueue")
def enqueue(
    task_id: str = typer.Argument(..., help="Task id."),
    queue: str = typer.Option("default", "--queue", "-q", help="Queue to put it in."),
    front: bool = typer.Option(False, "--front", help="Put it at the head of the queue."),
    as_json: bool = JSON,
) -> None:
    """Put a created task in a queue."""
    from clearml_core.tasks import enqueue_task

    task = enqueue_task(task_id, queue, front=front)
    _print_task(task, as_json, f"{task.id}: queued in {task.queue}")


@app.command("dequeue")
def dequeue(task_id: str = typer.Argument(..., help="Task id."), as_json: bool = JSON) -> None:
    """Take a queued task out of its queue (it goes back to created)."""
    from clearml_core.tasks import dequeue_task

    task = dequeue_task(task_id)
    _print_task(task, as_json, f"{task.id}: {task.status}")


@app.command("clone")
def clone(
    task_id: str = typer.Argument(..., help="Task id."),
    name: str | None = typer.Option(None, "--name", help="Name of the copy (default: 'Clone Of <name>')."),
    project: str | None = typer.Option(None, "--project", help="Project of the copy."),
    queue: str | None = typer.Option(None, "--queue", help="Enqueue the copy right away."),
    as_json: bool = JSON,
) -> None:
    """Copy a task's definition into a new task; prints the new id."""
    from clearml_core.tasks import clone_task

    task = clone_task(task_id, name=name, project=project, queue=queue)
    _print_task(task, as_json, task.id)


@app.command("reset")
def reset(
    task_id: str = typer.Argument(..., help="Task id."),
    force: bool = typer.Option(False, "--force", help="Reset even a running task."),
    as_json: bool = JSON,
) -> None:
    """Return a task to created, forgetting its last run and logs."""
    from clearml_core.tasks import reset_task

    task = reset_task(task_id, force=force)
    _print_task(task, as_json, f"{task.id}: {task.status}")


@app.command("delete")
def delete(
    task_id: str = typer.Argument(..., help="Task id."),
    force: bool = typer.Option(False, "--force", help="Delete even a running task."),
    as_json: bool = JSON,
) -> None:
    """Delete a task and its logs."""
    from clearml_core.tasks import delete_task

    delete_task(task_id, force=force)
    if as_json:
        echo_json({"id": task_id, "deleted": True})
    else:
        echo(f"{task_id}: deleted")
