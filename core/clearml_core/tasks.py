"""Tasks from Python: define, queue, watch and manage them, as ``clearml-core task …`` does.

::

    from clearml_core import tasks

    task = tasks.create_task(
        "train", folder="./experiment", script="train.py", args=["--epochs", "3"],
        requirements=["numpy"], queue="default",
    )
    for event in tasks.follow_logs(task.id):
        print(*event.lines, sep="\\n")
    print(tasks.get_task(task.id).status)

Every function takes an optional ``plane``; by default it opens ``agent.control_plane``. A task
points at a git repository (``repo`` with ``branch``/``commit``; the agent clones it) or a local
``folder`` (copied into the task's working dir when it runs, so edits made before then are
picked up). Nothing is captured from the caller's environment: only the ``env`` given is stored,
and :func:`task_view` masks the values of secret-looking variables when a task is shown. The one
exception is asked for: ``sdk.development.detect_with_conda_freeze`` records the conda environment
the caller runs in (``CONDA_PREFIX``) as the task's conda requirements.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from clearml_core.controlplane.protocol import DEFAULT_QUEUE, ControlPlane
from clearml_core.controlplane.records import (
    FINAL_STATUSES,
    Container,
    LogEvent,
    Parameters,
    Requirements,
    Script,
    Task,
    TaskStatus,
)
from clearml_core.environments.requirements import read_requirements_file
from clearml_core.errors import NotFoundError, UserError

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_REMOTE_REPO = re.compile(r"^(?:[a-z][a-z0-9+.-]*://|[\w.-]+@[\w.-]+:)", re.IGNORECASE)
FOLLOW_POLL_SEC = 0.2
"""How often :func:`follow_logs` asks for new lines (``task logs --follow`` shows them within 1 s)."""


def _plane(plane: ControlPlane | None) -> ControlPlane:
    if plane is not None:
        return plane
    from clearml_core.controlplane import open_control_plane

    return open_control_plane()


# -- building a task definition -----------------------------------------------------------


def parse_env(pairs: Iterable[str]) -> dict[str, str]:
    """``["K=V", …]`` → ``{"K": "V"}``; a malformed pair is a :class:`UserError`."""
    env: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not _ENV_NAME.match(name):
            raise UserError(f"--env {pair!r}: write NAME=VALUE with NAME made of letters, digits and _")
        env[name] = value
    return env


def folder_script(folder: str | Path, script: str) -> Script:
    """The script part of a task that runs ``script`` from a local ``folder``.

    ``script`` is relative to the folder (an absolute path inside it is made relative). Both must
    exist now; the folder's content is copied when the task runs.
    """
    root = Path(folder).expanduser().resolve()
    if not root.is_dir():
        raise NotFoundError(f"task folder {root} does not exist or is not a folder")
    entry = Path(script).expanduser()
    if entry.is_absolute():
        try:
            entry = entry.resolve().relative_to(root)
        except ValueError:
            raise UserError(f"--script {script} is not inside --folder {root}") from None
    if not (root / entry).is_file():
        raise NotFoundError(f"script {entry} does not exist in {root}")
    return Script(folder=str(root), entry_point=entry.as_posix(), working_dir=".")


def repository_script(
    repository: str, script: str, *, branch: str = "", commit: str = "", working_dir: str = "."
) -> Script:
    """The script part of a task that runs ``script`` from a git repository.

    Takes remote URLs (``https://``, ``ssh://``, ``git@host:org/repo.git``, ``file://``); the agent
    clones them. A local working copy (``--repo .``) goes through :func:`create_task`, which
    captures its state (:mod:`clearml_core.vcs.capture`).
    """
    if not _REMOTE_REPO.match(repository):
        raise UserError(
            f"--repo {repository!r}: give the repository's URL (https://…, ssh://…, git@host:org/repo.git "
            "or file:///path/to/repo) or a path inside a local git working copy"
        )
    if Path(script).is_absolute():
        raise UserError(f"--script {script}: give the path relative to the repository root")
    return Script(
        repository=repository,
        branch=branch,
        commit=commit,
        entry_point=Path(script).as_posix(),
        working_dir=working_dir or ".",
    )


def create_task(
    name: str,
    *,
    script: str,
    project: str = "",
    repo: str | None = None,
    branch: str = "",
    commit: str = "",
    folder: str | Path | None = None,
    working_dir: str = ".",
    args: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    requirements: Sequence[str] = (),
    requirements_file: str | Path | None = None,
    docker_image: str = "",
    docker_args: Sequence[str] = (),
    docker_setup_script: str = "",
    output_uri: str = "",
    timeout: float | None = None,
    queue: str | None = None,
    tags: Sequence[str] = (),
    plane: ControlPlane | None = None,
) -> Task:
    """Define a task (and enqueue it when ``queue`` is given); returns the stored record.

    Exactly one of ``repo`` and ``folder``. ``requirements`` are pip lines; the lines of
    ``requirements_file`` are read now and come first. ``timeout`` is in seconds.

    ``repo`` is a URL, or a path inside a local git working copy: then its remote URL, branch,
    commit and uncommitted diff are recorded (``sdk.development.store_uncommitted_code_diff``,
    ``store_code_diff_from_remote``), ``script`` is relative to that path, and when no
    requirements are given, the repository's ``requirements.txt`` (or, with
    ``sdk.development.detect_with_pip_freeze``, this environment's packages) become the task's.
    With ``sdk.development.detect_with_conda_freeze`` the conda environment of ``CONDA_PREFIX``
    becomes the task's conda requirements (an ``environment.yml`` pinning every package).
    """
    if not name or not name.strip():
        raise UserError("a task needs a name (--name)")
    if (repo is None) == (folder is None):
        raise UserError("give either --repo URL or --folder DIR (exactly one)")
    if not script:
        raise UserError("a task needs an entry script (--script)")
    if timeout is not None and timeout <= 0:
        raise UserError(f"--timeout {timeout:g}: give a number of seconds above 0")
    captured_requirements: list[str] = []
    if folder is not None:
        script_record = folder_script(folder, script)
        if working_dir not in ("", "."):
            script_record.working_dir = working_dir
    else:
        assert repo is not None
        if _REMOTE_REPO.match(repo):
            script_record = repository_script(
                repo, script, branch=branch, commit=commit, working_dir=working_dir
            )
        else:
            from clearml_core.settings import get_config
            from clearml_core.vcs.capture import capture_working_copy

            captured = capture_working_copy(
                repo, script, config=get_config(), commit=commit, branch=branch, working_dir=working_dir
            )
            script_record = Script(
                repository=captured.repository,
                branch=captured.branch,
                commit=captured.commit,
                entry_point=captured.entry_point,
                working_dir=captured.working_dir,
                diff=captured.diff,
            )
            captured_requirements = captured.requirements
    if env:
        parse_env(f"{key}={value}" for key, value in env.items())  # validates the names
    pip = [*(read_requirements_file(requirements_file) if requirements_file else []), *requirements]
    if not pip:
        pip = captured_requirements
    task = Task(
        name=name.strip(),
        project=project,
        script=script_record,
        requirements=Requirements(pip=[line for line in pip if line.strip()], conda=_conda_freeze()),
        container=Container(
            image=docker_image, arguments=list(docker_args), setup_script=docker_setup_script
        ),
        parameters=Parameters(argv=list(args), env=dict(env or {})),
        output_uri=output_uri,
        timeout=timeout,
        tags=list(tags),
    )
    plane = _plane(plane)
    if queue is not None:
        plane.get_queue(queue)  # an unknown queue fails before the task exists
    stored = plane.create_task(task)
    if queue is not None:
        stored = plane.enqueue(stored.id, queue)
    return stored


def _conda_freeze() -> str:
    """The ``environment.yml`` of the conda environment ``task create`` runs in, when
    ``sdk.development.detect_with_conda_freeze`` asks for it; "" otherwise."""
    from clearml_core.settings import get_config

    if not get_config().get_bool("sdk.development.detect_with_conda_freeze", False):
        return ""
    prefix = os.environ.get("CONDA_PREFIX", "")
    from clearml_core.environments.conda_meta import describe_environment, is_conda_prefix

    if not prefix or not is_conda_prefix(prefix):
        return ""
    return describe_environment(
        prefix, comment=f"the conda environment {prefix} (sdk.development.detect_with_conda_freeze)"
    )


# -- managing tasks -----------------------------------------------------------------------


def get_task(task_id: str, *, plane: ControlPlane | None = None) -> Task:
    return _plane(plane).get_task(task_id)


def list_tasks(
    *,
    status: str | Iterable[str] | None = None,
    queue: str | None = None,
    project: str | None = None,
    name: str | None = None,
    limit: int | None = None,
    plane: ControlPlane | None = None,
) -> list[Task]:
    """Tasks matching every filter given (``name``: a part of it), oldest first."""
    return _plane(plane).list_tasks(status=status, queue=queue, project=project, name=name, limit=limit)


def enqueue_task(
    task_id: str, queue: str = DEFAULT_QUEUE, *, front: bool = False, plane: ControlPlane | None = None
) -> Task:
    return _plane(plane).enqueue(task_id, queue, front=front)


def dequeue_task(task_id: str, *, plane: ControlPlane | None = None) -> Task:
    return _plane(plane).dequeue(task_id)


def abort_task(task_id: str, *, force: bool = False, plane: ControlPlane | None = None) -> Task:
    """Stop a task: at once when it waits, through its worker when it runs (``force``: at once)."""
    return _plane(plane).abort(task_id, force=force)


def clone_task(
    task_id: str,
    *,
    name: str | None = None,
    project: str | None = None,
    queue: str | None = None,
    plane: ControlPlane | None = None,
) -> Task:
    """A new ``created`` task with the same definition (enqueued when ``queue`` is given)."""
    plane = _plane(plane)
    if queue is not None:
        plane.get_queue(queue)
    clone = plane.clone(task_id, name=name, project=project)
    return plane.enqueue(clone.id, queue) if queue is not None else clone


def reset_task(task_id: str, *, force: bool = False, plane: ControlPlane | None = None) -> Task:
    """Back to ``created``, forgetting the last run and its logs."""
    return _plane(plane).reset(task_id, force=force)


def delete_task(task_id: str, *, force: bool = False, plane: ControlPlane | None = None) -> None:
    _plane(plane).delete_task(task_id, force=force)


# -- logs ---------------------------------------------------------------------------------


def read_logs(task_id: str, *, after: int = 0, plane: ControlPlane | None = None) -> list[LogEvent]:
    return _plane(plane).read_logs(task_id, after=after)


def follow_logs(
    task_id: str,
    *,
    after: int = 0,
    poll_interval: float = FOLLOW_POLL_SEC,
    plane: ControlPlane | None = None,
) -> Iterator[LogEvent]:
    """Every log batch after ``after``, then new ones as they come, until the task has ended.

    Stops once the task is ``completed``/``failed``/``stopped`` and its last lines were yielded.
    """
    plane = _plane(plane)
    while True:
        # Read the status before the logs: lines written before the task ended are then
        # certain to be in the read that follows.
        ended = TaskStatus(plane.get_task(task_id).status) in FINAL_STATUSES
        events = plane.read_logs(task_id, after=after)
        for event in events:
            after = event.seq
            yield event
        if ended:
            return
        if not events:
            time.sleep(poll_interval)


# -- showing ------------------------------------------------------------------------------


def mask_env_value(name: str, value: str) -> str:
    """How an environment variable of a task is shown: secrets (by their name) masked.

    The same names the CLI scrubs from its own environment: passwords, tokens, secrets, ``*_KEY``;
    access key ids keep their last four characters.
    """
    from clearml_core.config.redact import MASK, is_access_key, is_secret_key, mask_access_key, mask_url

    if not value:
        return value
    if is_access_key(name):
        return mask_access_key(value)
    if is_secret_key(name) or name.upper().endswith("_KEY"):
        return MASK
    return mask_url(value)


def task_view(task: Task) -> dict[str, Any]:
    """The task as a dict fit to print: secret-looking env values and URL passwords masked."""
    from clearml_core.config.redact import mask_url

    data = task.to_dict()
    data["parameters"]["env"] = {
        name: mask_env_value(name, value) for name, value in task.parameters.env.items()
    }
    data["script"]["repository"] = mask_url(data["script"]["repository"])
    data["output_uri"] = mask_url(data["output_uri"])
    return data


__all__ = [
    "abort_task",
    "clone_task",
    "create_task",
    "delete_task",
    "dequeue_task",
    "enqueue_task",
    "folder_script",
    "follow_logs",
    "get_task",
    "list_tasks",
    "mask_env_value",
    "parse_env",
    "read_logs",
    "read_requirements_file",
    "repository_script",
    "reset_task",
    "task_view",
]
