"""The execution-environment protocol: where a task's process runs.

An execution environment turns a :class:`LaunchSpec` (argv, working dir, environment, and for
container environments an image) into a running :class:`Execution`: ``prepare`` (pull an image,
check a binary), ``start`` (the process, its output streamed line by line into a
:class:`LogSink`), then ``wait`` / ``abort``. The agent never touches the process directly, so the
built-in local runner (``venv``) and the docker plugin are interchangeable.

An environment may also reshape the agent's task pipeline (:meth:`ExecutionEnvironment.stages`):
a container environment replaces the host ``environment`` stage with one that builds inside the
container. The default leaves the pipeline as it is.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from clearml_core.config import Config

DEFAULT_ABORT_GRACE_SEC = 1.0
"""Seconds between SIGTERM and SIGKILL when a task is aborted or times out."""


class LogSink(Protocol):
    """Receives a task's output, one line at a time (without its line ending)."""

    def write(self, stream: str, line: str) -> None:
        """``stream`` is ``"stdout"``, ``"stderr"`` or ``"agent"`` (lines the agent itself adds)."""

    def flush(self) -> None:
        """Push buffered lines to where they go."""

    def close(self) -> None:
        """Flush and release resources; later writes are dropped."""


@dataclass(frozen=True)
class LaunchSpec:
    """What to run and how.

    ``argv[0]`` is looked up on ``PATH`` of ``env``. ``image`` / ``image_args`` are for container
    environments; the local runner refuses a spec with an image rather than silently ignoring it.
    """

    argv: Sequence[str]
    cwd: Path
    env: Mapping[str, str]
    task_id: str = ""
    image: str | None = None
    image_args: Sequence[str] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)


class PipelineStage(Protocol):
    """A step of the agent's task pipeline as an execution environment sees it: a ``name`` and
    ``run(ctx)``. The agent's :class:`clearml_core.agent.context.Stage` is one (its ``ctx`` is the
    agent's ``TaskContext``); this layer names only the shape, so it needs nothing of the agent."""

    name: str

    def run(self, ctx: Any) -> None: ...


class Execution(abc.ABC):
    """A started task process; its output is already flowing into the sink."""

    pid: int

    @abc.abstractmethod
    def poll(self) -> int | None:
        """The exit code when the process has ended and its output is drained, else None."""

    @abc.abstractmethod
    def wait(self, timeout: float | None = None) -> int | None:
        """Wait up to ``timeout`` seconds (forever when None); the exit code, or None if running.

        A negative code ``-N`` means the process was killed by signal ``N``.
        """

    @abc.abstractmethod
    def abort(self, grace: float = DEFAULT_ABORT_GRACE_SEC) -> int:
        """Stop the whole process tree: a polite signal, then a kill after ``grace`` seconds.

        Returns the exit code. Safe to call on a finished execution and more than once.
        """


class ExecutionEnvironment(abc.ABC):
    """One kind of place a task runs in. Built by its :class:`~clearml_core.specs.ExecutionEnvSpec`
    factory as ``factory(config)``."""

    name: str = ""

    def __init__(self, config: Config | None = None) -> None:
        self.config = config

    def prepare(self, spec: LaunchSpec, sink: LogSink) -> LaunchSpec:
        """Make the environment ready for ``spec`` (pull an image, check a binary) and return the
        spec to start, possibly rewritten. Progress goes to ``sink``; failures raise
        :class:`ExecutionError` with a reason that ends up in the task record."""
        return spec

    @abc.abstractmethod
    def start(self, spec: LaunchSpec, sink: LogSink) -> Execution:
        """Start the process; raise :class:`ExecutionError` when it cannot start at all."""

    def stages(self, stages: list[PipelineStage]) -> list[PipelineStage]:
        """The task pipeline this environment wants, given the agent's default one (a list of
        :class:`clearml_core.agent.context.Stage`)."""
        return stages

    def clean_up_orphans(self, extra: Mapping[str, Any] | None = None) -> list[str]:
        """Stop what tasks of agents that died (``kill -9``) left running in this environment.

        A daemon calls it when it starts, before it takes a task, with what its flags tell the
        environment (what it puts in :attr:`LaunchSpec.extra`: ``podman``, …). Returns one line
        per thing stopped, for the daemon's log. The local runner needs none: its tasks die with
        their agent.
        """
        return []

    def build_image(self, build: ImageBuild, plane: Any, sink: LogSink) -> str:
        """``agent build --docker``: an image holding the task's code and environment, named
        ``build.target``; returns the image's id. ``plane`` is the control plane the task is in.
        Environments that run no images refuse (the default)."""
        raise ExecutionError(f"the {self.name or 'this'} execution environment does not build images")


@dataclass(frozen=True)
class ImageBuild:
    """What ``agent build --docker`` asks for (clearml-agent's flags, with their meaning)."""

    task_id: str
    target: str
    """The new image's name (``name`` or ``name:tag``)."""
    image: str | None = None
    """``--docker IMAGE``: the base image when the task names none (or always, with ``force_image``)."""
    image_args: Sequence[str] = ()
    entry_point: str | None = None
    """``reuse_task`` / ``clone_task``: ``docker run TARGET`` runs the task (or a clone of it); None:
    the image only holds the task's environment."""
    python_version: str | None = None
    install_globally: bool = False
    force_image: bool = False
    """``--force-docker``: the ``--docker`` image even when the task names one."""
    gpus: list[str] | None = None


HINTS = {
    "docker": (
        "install it with pip install 'clearml-core[docker]' (the clearml-core-runner-docker plugin), "
        "or run the task in the local 'venv' environment (without the docker flags)"
    )
}
"""What to do about an execution environment no installed plugin provides, by its name."""


class ExecutionError(Exception):
    """The task's process could not be prepared or started; the message is the task's failure reason."""


def load_environment(name: str, config: Config | None = None, *, asked_by: str = "") -> ExecutionEnvironment:
    """The installed execution environment called ``name`` (``venv``, ``docker``, …).

    ``asked_by`` names what asked for it (``--docker``), for the message when it is missing.
    """
    from clearml_core.errors import NotFoundError
    from clearml_core.plugins import get_registry

    try:
        spec = get_registry().execution_environment(name)
    except NotFoundError:
        hint = HINTS.get(name)
        if hint is None:
            raise
        asker = f" ({asked_by})" if asked_by else ""
        raise NotFoundError(f"{name} mode{asker} needs a {name} execution environment: {hint}") from None
    factory = spec.load()
    environment = factory(config)
    if not isinstance(environment, ExecutionEnvironment):
        raise TypeError(f"execution environment {name!r} ({spec.factory}) is not an ExecutionEnvironment")
    return environment


__all__ = [
    "Execution",
    "ExecutionEnvironment",
    "ExecutionError",
    "ImageBuild",
    "LaunchSpec",
    "LogSink",
    "PipelineStage",
    "load_environment",
]
