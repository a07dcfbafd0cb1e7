"""The ``run`` stage of docker mode: the rest of the task in its own container.

The host agent keeps ``prepare_workdir`` (the task's folder, mounted into the container) and
``upload_outputs`` (this machine's storage credentials); :class:`RunInContainer` replaces
``code``, ``environment`` and ``run``, which happen inside (see
:mod:`clearml_core_runner_docker.inner`). It

1. picks the image, arguments and setup script (:mod:`~clearml_core_runner_docker.selection`) and
   combines the arguments by clearml-agent's rules (:mod:`~clearml_core_runner_docker.arguments`);
2. writes the run folder: the task's record, the configuration (a mounted file, never a variable
   or an argument: it holds secrets), the environment file, the scripts;
3. has the execution environment create and start the container, then waits for it through the
   same :func:`~clearml_core.agent.stages.run.supervise` as a local task (abort and timeout stop
   the container: SIGTERM, grace, SIGKILL);
4. reads ``result.json`` and the container's end (exit code, out of memory) into the task's
   record: one reason when it failed, the code, the environment and the frozen packages when
   it ran.

The run folder is deleted when the stage ends: it holds the configuration's secrets.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import string
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from clearml_core.agent.context import TaskAborted, TaskContext, TaskFailed
from clearml_core.runners.base import ExecutionError, LaunchSpec
from clearml_core.runners.output import MemorySink, TeeSink
from clearml_core_runner_docker import arguments as docker_args
from clearml_core_runner_docker import bootstrap, layout
from clearml_core_runner_docker.container import LABEL_PREFIX, ContainerRequest, ExitState
from clearml_core_runner_docker.selection import Selection, default_image, select
from clearml_core_runner_docker.translate import ArgumentError, ContainerOptions, translate

if TYPE_CHECKING:
    from clearml_core.config import Config
    from clearml_core_runner_docker.environment import DockerEnvironment, PreparedImage

RESULT_FILE = "result.json"
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]", "0.0.0.0")  # noqa: S104  (names, not binds)
NAME_CHARACTERS = string.ascii_letters + string.digits + "_.-"


@dataclass
class RunFolder:
    """The task's private run folder on this machine (``/clearml-core/run`` inside)."""

    path: Path

    @classmethod
    def create(cls, work_dir: Path) -> RunFolder:
        path = work_dir / ".container"
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(mode=0o700, parents=True)
        os.chmod(path, 0o700)
        return cls(path)

    def write(self, name: str, text: str, mode: int = 0o600) -> Path:
        target = self.path / name
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        return target

    def result(self) -> dict[str, Any] | None:
        try:
            return dict(json.loads((self.path / RESULT_FILE).read_text(encoding="utf-8")))
        except (OSError, ValueError):
            return None

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def control_plane_of(ctx: TaskContext) -> tuple[str, Path | None, bool]:
    """The control plane's URL as the container uses it, the folder to mount for it (SQLite),
    and whether it is on this machine only (then the container shares the host's network)."""
    from clearml_core.controlplane import control_plane_url

    plane = ctx.plane
    path = getattr(plane, "path", None)
    if isinstance(path, Path):
        return f"sqlite:///{path}", path.parent, True
    url = str(getattr(plane, "url", "") or control_plane_url(ctx.config))
    from urllib.parse import urlparse

    host = (urlparse(url).hostname or "").lower()
    return url, None, host in LOOPBACK_HOSTS


def container_name(config: Config, ctx: TaskContext) -> str | None:
    """``agent.docker_container_name_format`` filled in, or None (the engine names it)."""
    from clearml_core.controlplane.records import Task

    name_format = config.get_str("agent.docker_container_name_format", "") or ""
    if not name_format:
        return None
    fields: dict[str, Any] = {}
    record = Task.to_dict(ctx.task)
    for key, path in config.get_dict("agent.docker_container_name_format_fields").items():
        value: Any = record
        for part in str(path).split("."):
            if isinstance(value, list) and part.isdigit() and int(part) < len(value):
                value = value[int(part)]
            elif isinstance(value, dict):
                value = value.get(part)
            else:
                value = None
        fields[str(key)] = value

    def safe(text: str) -> str:
        return "".join(c if c in NAME_CHARACTERS else "-" for c in text)

    try:
        name = name_format.format(
            task_id=safe(ctx.task.id),
            worker_id=safe(ctx.worker_id),
            rand_string="".join(secrets.choice(string.ascii_lowercase) for _ in range(32)),
            **fields,
        )
    except (KeyError, IndexError, ValueError) as error:
        ctx.log(
            f"agent.docker_container_name_format {name_format!r} cannot be filled in ({error}); the engine names the container"
        )
        return None
    if (
        not name
        or name[0] not in string.ascii_letters + string.digits
        or any(c not in NAME_CHARACTERS for c in name)
    ):
        ctx.log(
            f"the container name {name!r} is not valid (letters, digits, _ . -); the engine names the container"
        )
        return None
    return name


def gpu_requests(
    ctx: TaskContext, options: ContainerOptions
) -> tuple[list[Any], dict[str, str], list[str] | None]:
    """Device requests for the engine, variables for the container, and the GPUs the agent inside
    pins the task to (None: every GPU it sees, which are only the ones it was given)."""
    from docker.types import DeviceRequest

    skip_flag = os.environ.get("CLEARML_DOCKER_SKIP_GPUS_FLAG", "").strip().lower() in (
        "1",
        "true",
        "yes",
        "on",
    )
    if options.gpus is not None:
        value = options.gpus
        if value == "all":
            return [DeviceRequest(count=-1, capabilities=[["gpu"]])], {}, None
        if value.startswith("device="):
            ids = [part for part in value.removeprefix("device=").split(",") if part]
            return [DeviceRequest(device_ids=ids, capabilities=[["gpu"]])], {}, None
        if value.isdigit():
            return [DeviceRequest(count=int(value), capabilities=[["gpu"]])], {}, None
        raise ArgumentError(f"--gpus {value!r}: write all, N or device=0,1")
    gpus = ctx.gpus
    if gpus == []:
        return [], {"NVIDIA_VISIBLE_DEVICES": "none"}, []
    if gpus is None:
        from clearml_core.agent.gpus import detect_gpus

        if not detect_gpus():
            return [], {}, None
        return ([], {}, None) if skip_flag else ([DeviceRequest(count=-1, capabilities=[["gpu"]])], {}, None)
    devices = [gpu.replace(".", ":") for gpu in gpus]
    if skip_flag:
        return [], {"NVIDIA_VISIBLE_DEVICES": ",".join(devices)}, None
    return [DeviceRequest(device_ids=devices, capabilities=[["gpu"]])], {}, None


def visible_devices(requests: list[Any]) -> str:
    """``NVIDIA_VISIBLE_DEVICES`` for what ``requests`` ask: ``all``, the ids, or the first N."""
    ids: list[str] = []
    for request in requests:
        count = int(request.get("Count") or 0)
        if count < 0:
            return "all"
        ids += [str(item) for item in request.get("DeviceIDs") or []] or [str(i) for i in range(count)]
    return ",".join(ids)


def agent_labels(ctx: TaskContext) -> dict[str, str]:
    """What marks the container as this agent's (the reaper of dead agents' containers reads it)."""
    import shlex
    import socket

    import psutil

    labels = {
        f"{LABEL_PREFIX}task": ctx.task.id,
        f"{LABEL_PREFIX}worker": ctx.worker_id,
        f"{LABEL_PREFIX}host": socket.gethostname(),
        f"{LABEL_PREFIX}agent-pid": str(os.getpid()),
        f"{LABEL_PREFIX}agent-started": f"{psutil.Process().create_time():.3f}",
        "clearml-worker-id": ctx.worker_id,  # clearml-agent's labels, for tools that filter on them
        "clearml-parent-worker-id": ctx.worker_id,
    }
    for item in shlex.split(os.environ.get("CLEARML_AGENT_EXTRA_DOCKER_LABELS", "")):
        name, _, value = item.partition("=")
        labels[name] = value
    return labels


class RunInContainer:
    """The ``run`` stage in docker mode (see the module docstring)."""

    name = "run"
    poll_interval = 0.05

    def run(self, ctx: TaskContext) -> None:
        from clearml_core.agent.stages.run import supervise

        environment: DockerEnvironment = ctx.environment  # type: ignore[assignment]
        config = ctx.config
        selection = select(ctx.task, default_image(config, ctx.default_image, ctx.default_image_args), config)
        if not selection.image:
            raise TaskFailed(
                "no container image: the task names none and neither --docker IMAGE nor "
                "agent.default_docker.image gives one"
            )
        run_folder = RunFolder.create(ctx.work_dir)
        ctx.state["container_run_folder"] = run_folder
        try:
            request, description = self._request(ctx, environment, selection, run_folder)
        except (ArgumentError, layout.LayoutError) as error:
            raise TaskFailed(str(error)) from None
        ctx.log(description)
        extra = {"container": request, **dict(ctx.options.launch_extra)}
        spec = LaunchSpec(
            argv=request.command,
            cwd=ctx.work_dir,
            env={},
            task_id=ctx.task.id,
            image=selection.image,
            extra=extra,
        )
        tail = MemorySink(keep=20)
        try:
            spec = environment.prepare(spec, ctx.sink)
            prepared = spec.extra["prepared"]
            ctx.state["container_prepared"] = prepared
            try:
                binds, _notes = ctx.state["container_host_mounts"].binds(prepared.mounts())
            except layout.LayoutError as error:
                raise TaskFailed(str(error)) from None
            request.binds.extend(binds)
            self._write_files(ctx, selection, run_folder, prepared)
            ctx.check()
            started = ctx.clock()
            execution = environment.start(spec, TeeSink(ctx.sink, tail))
        except ExecutionError as error:
            raise TaskFailed(str(error)) from None
        ctx.state["container_execution"] = execution
        supervise(ctx, execution, started, poll_interval=self.poll_interval)
        ctx.state["container_tail"] = tail.texts()
        ctx.state["container_memory"] = request.create.get("mem_limit")
        self._record(ctx, selection, execution.state(), run_folder.result())
        if selection.default:
            self._update_back(ctx, selection)
        if ctx.result.aborted:
            raise TaskAborted(ctx.result.reason)

    def cleanup(self, ctx: TaskContext) -> None:
        execution = ctx.state.pop("container_execution", None)
        if execution is not None:
            execution.remove()
        folder = ctx.state.pop("container_run_folder", None)
        if isinstance(folder, RunFolder):
            folder.remove()

    # -- the request -------------------------------------------------------------------------
    def _request(
        self, ctx: TaskContext, environment: DockerEnvironment, selection: Selection, run_folder: RunFolder
    ) -> tuple[ContainerRequest, str]:
        config = ctx.config
        merged = docker_args.combined(config, selection.arguments)
        if merged.stripped:
            ctx.log(merged.warning())
        options = translate(merged.tokens)
        for note in options.notes:
            ctx.log(f"docker argument ignored: {note}")
        url, plane_dir, local_plane = control_plane_of(ctx)
        network = options.network or ("host" if local_plane else None)
        create = dict(options.create)
        if network:
            create["network_mode"] = network
        devices, gpu_environ, inner_gpus = gpu_requests(ctx, options)
        if devices and ctx.options.launch_extra.get("podman"):
            # podman's Docker-compatible API (4.3) drops device requests without a word; its NVIDIA
            # hook (or CDI set up for it) reads the variable instead, as with CLEARML_DOCKER_SKIP_GPUS_FLAG
            gpu_environ = {**gpu_environ, "NVIDIA_VISIBLE_DEVICES": visible_devices(devices)}
            devices = []
        ctx.state["container_gpus"] = inner_gpus
        mounts = [
            layout.Mount(run_folder.path, layout.RUN),
            layout.Mount(ctx.work_dir, str(ctx.work_dir)),
        ]
        if plane_dir is not None:
            mounts.append(layout.Mount(plane_dir, str(plane_dir)))
        mounts += layout.cache_mounts(config)
        ssh, ssh_environ, ssh_copy, git_folder = layout.ssh_mounts(config, run_folder.path)
        mounts += ssh
        ctx.state["container_ssh"] = (ssh_copy, git_folder)
        ctx.state["container_control_plane"] = url
        hosts = layout.HostMounts()
        ctx.state["container_host_mounts"] = hosts
        binds, notes = hosts.binds(mounts)
        for note in notes:
            ctx.log(note)
        ports = options.ports
        secret_environ = dict(options.environment)
        secret_environ.update(ssh_environ)
        if ports and network != "host":
            from clearml_core_runner_docker import ports as port_rules

            ports = port_rules.remap(
                ports, port_rules.allowed_range(config.get("agent.docker_args_allowed_port_range"))
            )
            mapping = port_rules.mapping(ports)
            if mapping:
                ctx.task.runtime = {**(ctx.task.runtime or {}), port_rules.RUNTIME_KEY: mapping}
                address = port_rules.host_ip()
                if address:
                    secret_environ[port_rules.HOST_IP_VARIABLE] = address
        ctx.state["container_environ"] = secret_environ
        labels = {**options.labels, **agent_labels(ctx)}
        services = bool(ctx.options.launch_extra.get("services_mode"))
        # as clearml-agent does, a service gets a worker id of its own (it may register it)
        worker = f"{ctx.worker_id}:service:{ctx.task.id}" if services else ctx.worker_id
        ctx.state["container_worker_id"] = worker
        visible = {
            "CLEARML_WORKER_ID": worker,
            "CLEARML_TASK_ID": ctx.task.id,
            "CLEARML_DOCKER_IMAGE": selection.image,
            "CLEARML_CONFIG_FILE": f"{layout.RUN}/clearml.json",
            "PYTHONUNBUFFERED": "1",
            **gpu_environ,
        }
        if services:
            visible["CLEARML_AGENT_SERVICE_TASK"] = "1"
        pull = options.pull or ("always" if config.get_bool("agent.docker_force_pull", False) else "missing")
        request = ContainerRequest(
            image=selection.image,
            command=bootstrap.command(),
            environment=visible,
            binds=[*options.binds, *binds],
            mounts=options.mounts,
            ports=ports,
            labels=labels,
            device_requests=devices,
            create=create,
            name=options.create.get("name") or container_name(config, ctx),
            pull=pull,
        )
        request.create.pop("name", None)
        shown = " ".join(docker_args.sanitized(config, merged.tokens)) or "(none)"
        description = (
            f"running in the {selection.describe()} (arguments: {shown}"
            + (f"; network {network}" if network else "")
            + ")"
        )
        if selection.setup_script:
            description += "; with the task's setup shell script"
        return request, description

    # -- the run folder ----------------------------------------------------------------------
    def _write_files(
        self, ctx: TaskContext, selection: Selection, run_folder: RunFolder, prepared: PreparedImage
    ) -> None:
        config = ctx.config
        tree = layout.container_config(config, control_plane=ctx.state["container_control_plane"])
        run_folder.write("clearml.json", json.dumps(tree, indent=1, default=str))
        envelope = {
            "task": ctx.task.to_dict(),
            "worker_id": ctx.state.get("container_worker_id", ctx.worker_id),
            "work_dir": str(ctx.work_dir),
            "gpus": ctx.state.get("container_gpus"),
            "abort_grace": ctx.abort_grace,
            "image_key": prepared.image_id,
            "options": {
                "optimization": ctx.options.optimization,
                "standalone": ctx.options.standalone,
                "environ": dict(ctx.options.environ),
            },
        }
        run_folder.write("task.json", json.dumps(envelope, default=str))
        environ = dict(ctx.state.get("container_environ", {}))
        environ.update(ctx.options.environ)
        run_folder.write("env", bootstrap.env_file(environ))
        command = ["-m", "clearml_core_runner_docker.inner", "run", f"{layout.RUN}/task.json"]
        plan = prepared.agent_plan(command)
        run_folder.write("agent.json", json.dumps(plan))
        run_folder.write("start_agent.py", prepared.start_script())
        ssh_copy, git_folder = ctx.state.get("container_ssh", (None, None))
        script = bootstrap.script(
            config,
            setup_script=selection.setup_script,
            ssh_ro_folder=ssh_copy,
            ssh_folder=config.get_str("agent.docker_internal_mounts.ssh_folder", "~/.ssh") or "~/.ssh",
            git_files_folder=git_folder,
            start=prepared.start_command(),
            ready=(plan["venv"], command, plan["environ"]),
        )
        run_folder.write("bootstrap.sh", script, mode=0o700)

    # -- the outcome -------------------------------------------------------------------------
    def _record(
        self,
        ctx: TaskContext,
        selection: Selection,
        state: ExitState,
        result: dict[str, Any] | None,
    ) -> None:
        outcome = ctx.result
        container = {"image": selection.image, "default_image": selection.default}
        prepared = ctx.state.get("container_prepared")
        if prepared is not None:
            container["image_id"] = prepared.image_id
        if result:
            if result.get("stages"):
                container["stages"] = result["stages"]
            if result.get("code"):
                ctx.state["code"] = result["code"]
            if result.get("environment"):
                ctx.task.runtime = {**(ctx.task.runtime or {}), "environment": result["environment"]}
            if result.get("frozen"):
                self._record_frozen(ctx, list(result["frozen"]))
        ctx.task.runtime = {**(ctx.task.runtime or {}), "container": container}
        if outcome.aborted or outcome.timed_out:
            return
        limit = ""
        memory = ctx.state.get("container_memory")
        if memory:
            limit = f" (its limit is {memory})"
        if state.oom_killed or (result is not None and result.get("oom_killed")):
            outcome.exit_code = (
                result.get("exit_code") if result and result.get("exit_code") is not None else state.code
            )
            raise TaskFailed(
                f"out of memory: the container used all the memory it may{limit} and the kernel killed "
                "the task; give it more (--memory in the docker arguments) or make the task use less"
            )
        if result is None:
            tail = [line for line in ctx.state.get("container_tail", []) if line.strip()]
            outcome.exit_code = state.code
            detail = f": {tail[-1]}" if tail else ""
            raise TaskFailed(
                f"the container exited with code {state.code} before the task started{detail}"
                + (f" ({state.error})" if state.error else "")
            )
        if result.get("status") == "stopped":
            outcome.aborted = True
            outcome.reason = str(result.get("reason") or "aborted")
            return
        outcome.exit_code = result.get("exit_code")
        if result.get("status") == "failed":
            raise TaskFailed(str(result.get("reason") or "the agent in the container failed"))

    def _record_frozen(self, ctx: TaskContext, frozen: list[str]) -> None:
        ctx.task.requirements.frozen = frozen
        if ctx.plane is None:
            return
        try:
            ctx.plane.update_task(ctx.task.id, requirements=ctx.task.requirements)
        except Exception as error:  # informative only: the task ran
            ctx.log(f"cannot record the frozen package list on the task: {error}")

    def _update_back(self, ctx: TaskContext, selection: Selection) -> None:
        """As clearml-agent does: a task run in the default image records it in its container
        section, so a clone of it runs in the same image."""
        from clearml_core.controlplane.records import Container

        if ctx.plane is None:
            return
        container = Container(
            image=selection.image, arguments=list(selection.arguments), setup_script=selection.setup_script
        )
        try:
            ctx.plane.update_task(ctx.task.id, container=container)
            ctx.task.container = container
        except Exception as error:
            ctx.log(f"cannot record the image on the task: {error}")


__all__ = ["RunInContainer", "control_plane_of"]
