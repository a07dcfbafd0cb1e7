"""One task's container: created, started, its output read line by line, stopped, removed.

:class:`ContainerRequest` is everything the engine is asked for (the SDK's ``containers.create``
arguments, built by :mod:`clearml_core_runner_docker.stage`). :class:`DockerExecution` is the
started container as the agent's :class:`~clearml_core.runners.base.Execution`: a thread reads
its stdout and stderr (``attach`` with ``demux``, so the streams stay apart) into the task's log,
another waits for it to exit. Aborting sends SIGTERM, then SIGKILL after the grace period, as
for a local process; :meth:`DockerExecution.remove` removes the container whatever happened.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from clearml_core.runners.base import DEFAULT_ABORT_GRACE_SEC, Execution, ExecutionError, LogSink
from clearml_core.runners.output import LineSplitter
from clearml_core_runner_docker.engine import api_errors, is_not_found, short_error

LABEL_PREFIX = "clearml-core."


@dataclass
class ContainerRequest:
    """What to create; ``create`` holds the SDK keyword arguments the docker arguments asked for."""

    image: str
    command: list[str]
    environment: dict[str, str] = field(default_factory=dict)
    binds: list[str] = field(default_factory=list)
    """``SOURCE:TARGET[:ro]``: folders and files of this machine (see :func:`bind_mount`)."""
    mounts: list[Any] = field(default_factory=list)
    ports: dict[str, Any] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    device_requests: list[Any] = field(default_factory=list)
    create: dict[str, Any] = field(default_factory=dict)
    name: str | None = None
    pull: str | None = None
    """``always`` / ``missing`` / ``never`` (``--pull``, ``agent.docker_force_pull``)."""

    def create_kwargs(self) -> dict[str, Any]:
        kwargs = dict(self.create)
        kwargs.update(
            image=self.image,
            command=self.command,
            environment=dict(self.environment),
            labels=dict(self.labels),
            detach=True,
            stdin_open=False,
            tty=False,
        )
        mounts = [bind_mount(bind) for bind in self.binds] + list(self.mounts)
        if mounts:
            kwargs["mounts"] = mounts
        if self.ports:
            kwargs["ports"] = dict(self.ports)
        if self.device_requests:
            kwargs["device_requests"] = list(self.device_requests)
        if self.name:
            kwargs["name"] = self.name
        if kwargs.get("network_mode") == "host":
            kwargs.pop("ports", None)  # host networking publishes nothing; the engine would refuse
        return kwargs


def bind_mount(bind: str) -> Any:
    """``SOURCE:TARGET[:OPTIONS]`` as a mount of the container's own (not a ``-v`` volume, which
    would also declare TARGET a volume of the image a build commits). A named volume
    (``data:/data``) stays a volume."""
    from docker.types import Mount

    source, target, *rest = bind.split(":")
    options = set(",".join(rest).split(",")) if rest else set()
    if "/" not in source:
        return Mount(target=target, source=source, type="volume", read_only="ro" in options)
    return Mount(target=target, source=source, type="bind", read_only="ro" in options)


def create(client: Any, request: ContainerRequest) -> Any:
    """The container, created (not started); an engine refusal is an :class:`ExecutionError`."""
    from docker.models.containers import _create_container_args

    kwargs = request.create_kwargs()
    kwargs["version"] = client.api._version
    try:
        # the SDK's containers.create, without the inspect it makes after: the id is all we need
        created = client.api.create_container(**_create_container_args(kwargs))
        return client.containers.prepare_model({"Id": created["Id"]})
    except api_errors() as error:
        raise ExecutionError(
            f"the container engine refused to create the task's container: {short_error(error)}"
        ) from None


@dataclass
class ExitState:
    """How the container ended, as the engine reports it."""

    code: int | None
    oom_killed: bool = False
    error: str = ""


class DockerExecution(Execution):
    """A started container whose output flows into ``sink`` (see the module docstring)."""

    def __init__(self, client: Any, container: Any, sink: LogSink, *, collapse_cr: bool = True) -> None:
        self.client = client
        self.container = container
        self.id = str(container.id)
        self.pid = 0  # the container's processes are the engine's, not this machine's children
        self._sink = sink
        self._collapse_cr = collapse_cr
        self._exit: int | None = None
        self._exited = threading.Event()
        self._wait_error = ""
        self._reader = threading.Thread(
            target=self._read, name=f"clearml-docker-log-{self.id[:8]}", daemon=True
        )
        self._waiter = threading.Thread(
            target=self._wait, name=f"clearml-docker-wait-{self.id[:8]}", daemon=True
        )
        self._lock = threading.Lock()
        self._removed = False
        self._stream: Any = None

    def begin(self) -> None:
        """Attach to the container's output, start it, and start the threads that follow it.

        Attaching comes first (as ``docker run`` does), so a container that ends at once still
        has all its output read."""
        try:
            self._stream = self.client.api.attach(
                self.id, stdout=True, stderr=True, stream=True, logs=True, demux=True
            )
        except api_errors():
            self._stream = None  # read from the engine's log once it ends
        try:
            self.container.start()
        except api_errors() as error:
            if self._stream is not None:
                with contextlib.suppress(Exception):
                    self._stream.close()
            raise ExecutionError(start_failure(short_error(error))) from None
        self._reader.start()
        self._waiter.start()

    # -- following it ------------------------------------------------------------------------
    def _read(self) -> None:
        emit: Callable[[str, str], None] = self._sink.write
        splitter = LineSplitter(emit, self._collapse_cr)
        buffers = {"stdout": bytearray(), "stderr": bytearray()}
        try:
            stream = self._stream if self._stream is not None else self._logs_after_exit()
            for out, err in stream:
                for name, chunk in (("stdout", out), ("stderr", err)):
                    if chunk:
                        buffers[name] += chunk
                        splitter.split(name, buffers[name])
        except api_errors() as error:
            emit("agent", f"clearml-core: the container's output stopped: {short_error(error)}")
        except Exception as error:  # a broken stream must not take the task down with it
            emit("agent", f"clearml-core: reading the container's output failed: {error}")
        for name, buffer in buffers.items():
            if buffer:
                splitter.line(name, bytes(buffer))

    def _logs_after_exit(self) -> list[tuple[bytes | None, bytes | None]]:
        self._exited.wait()
        return [
            (self.client.api.logs(self.id, stdout=True, stderr=False), None),
            (None, self.client.api.logs(self.id, stdout=False, stderr=True)),
        ]

    def _wait(self) -> None:
        code: int | None = None
        while code is None:
            try:
                code = int(self.container.wait().get("StatusCode", -1))
            except api_errors() as error:
                if is_not_found(error):
                    code = -1
                    self._wait_error = "the container disappeared while the task ran"
                else:  # the wait request timed out or the engine blinked: ask again
                    time.sleep(0.5)
        self._exit = code
        self._exited.set()

    def poll(self) -> int | None:
        if not self._exited.is_set():
            return None
        self._reader.join(timeout=5)
        return self._exit

    def wait(self, timeout: float | None = None) -> int | None:
        if not self._exited.wait(timeout):
            return None
        self._reader.join(timeout=5)
        return self._exit

    def abort(self, grace: float = DEFAULT_ABORT_GRACE_SEC) -> int:
        """SIGTERM to the container's first process, SIGKILL after ``grace`` seconds."""
        if not self._exited.is_set():
            with contextlib.suppress(*api_errors()):
                self.container.kill(signal="SIGTERM")
            if not self._exited.wait(grace):
                with contextlib.suppress(*api_errors()):
                    self.container.kill(signal="SIGKILL")
        code = self.wait(grace + 30)
        return code if code is not None else -9

    # -- after it ----------------------------------------------------------------------------
    def state(self) -> ExitState:
        try:
            self.container.reload()
            state = self.container.attrs.get("State", {})
        except api_errors():
            return ExitState(self._exit, error=self._wait_error)
        return ExitState(
            code=int(state.get("ExitCode", self._exit if self._exit is not None else -1)),
            oom_killed=bool(state.get("OOMKilled")),
            error=str(state.get("Error") or self._wait_error),
        )

    def remove(self) -> None:
        """Remove the container (killing it first when it still runs); safe to call twice."""
        with self._lock:
            if self._removed:
                return
            self._removed = True
        with contextlib.suppress(*api_errors()):
            self.container.remove(force=True)
        self._reader.join(timeout=5)


def start_failure(explanation: str) -> str:
    """The reason when the engine cannot start a created container (most often: the GPUs)."""
    lowered = explanation.lower()
    if "device driver" in lowered or "nvidia" in lowered or "capabilities: [[gpu]]" in lowered:
        return (
            f"the container engine cannot give the task its GPUs ({explanation}); install the NVIDIA "
            "container toolkit on this machine, or run the agent with --cpu-only"
        )
    return f"the container engine cannot start the task's container: {explanation}"


__all__ = ["LABEL_PREFIX", "ContainerRequest", "DockerExecution", "ExitState", "create", "start_failure"]
