"""The control plane's errors: every one a :class:`~clearml_core.errors.UserError` (exit code 2)."""

from __future__ import annotations

from clearml_core.errors import NotFoundError, UserError

# -- errors -----------------------------------------------------------------------------------


class ControlPlaneError(UserError):
    """The control plane cannot be used as it is (file locked, corrupt, unreachable, too new)."""


class InvalidTransitionError(UserError):
    """The requested change does not fit the task's status (enqueue a completed task, …)."""


class AlreadyExistsError(UserError):
    """A queue (or task id) of that name exists already."""


class TaskNotFoundError(NotFoundError):
    """No task has the id asked for."""

    def __init__(self, task_id: str) -> None:
        super().__init__(f"no task with id {task_id!r}; `clearml-core task list` shows the tasks")
        self.task_id = task_id


class QueueNotFoundError(NotFoundError):
    """No queue has the name asked for."""

    def __init__(self, name: str) -> None:
        super().__init__(
            f"no queue named {name!r}; create it with `clearml-core queue create {name}` "
            "(or start the daemon with --create-queue)"
        )
        self.queue = name


class WorkerNotFoundError(NotFoundError):
    """No worker has the id asked for."""

    def __init__(self, worker_id: str) -> None:
        super().__init__(f"no worker with id {worker_id!r}; `clearml-core worker list` shows the workers")
        self.worker_id = worker_id


__all__ = [
    "AlreadyExistsError",
    "ControlPlaneError",
    "InvalidTransitionError",
    "QueueNotFoundError",
    "TaskNotFoundError",
    "WorkerNotFoundError",
]
