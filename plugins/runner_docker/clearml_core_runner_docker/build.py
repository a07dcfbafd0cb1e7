"""``agent build --docker``: an image holding a task's code and environment, as clearml-agent builds one.

A container of the task's image (or the ``--docker`` image: clearml-agent's precedence, and
``--force-docker`` to always use it) installs clearml-core at ``/clearml-core/agent``, puts the
task's code where ``agent execute`` looks for it (a folder task's folder at its own path, a git
task's commit in the image's VCS cache at ``/clearml-core/vcs-cache``) and builds the task's
environment at ``/clearml-core/venv`` (``--install-globally``: into the image's Python itself).
None of these paths is mounted, so committing the container keeps them. The image's configuration
(``/clearml-core/clearml.json``) is this agent's without its secrets, pointing at the same control
plane, with ``agent.python_binary`` the built environment's Python.

What ``docker run TARGET`` does depends on ``--entry-point``:

* ``reuse_task``: ``clearml-core agent execute --id ID --standalone-mode`` — the task itself runs,
  with the baked environment, and reports to the control plane;
* ``clone_task``: the same with ``--clone``: each run is a new copy of the task;
* none: the image's own command, with the task's environment first on ``PATH``.

With the embedded control plane the container must see its file: ``docker run -v DIR:DIR TARGET``
for the folder of ``agent.control_plane`` (and ``--network host`` for servers on this machine).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from clearml_core.runners.base import ExecutionError, ImageBuild, LaunchSpec, LogSink
from clearml_core_runner_docker import arguments as docker_args
from clearml_core_runner_docker import bootstrap, layout
from clearml_core_runner_docker.container import ContainerRequest, DockerExecution, create
from clearml_core_runner_docker.engine import api_errors, short_error
from clearml_core_runner_docker.selection import DefaultImage, default_image, select
from clearml_core_runner_docker.translate import ArgumentError, translate

if TYPE_CHECKING:
    from clearml_core_runner_docker.environment import DockerEnvironment

AGENT = "/clearml-core/agent"
VENV = "/clearml-core/venv"
IMAGE_CONFIG = "/clearml-core/clearml.json"
BUILD_LABEL = "clearml-core.build-of"


def without_secrets(tree: Any, key: str = "") -> Any:
    """``tree`` without the values the configuration treats as secrets (they stay out of images)."""
    from clearml_core.config.redact import is_secret_key, names_the_secret

    if isinstance(tree, dict):
        kept = {}
        for name, value in tree.items():
            path = f"{key}.{name}" if key else str(name)
            if (
                isinstance(value, (str, int, float))
                and not isinstance(value, bool)
                and (is_secret_key(str(name)) or names_the_secret(path))
            ):
                continue
            kept[name] = without_secrets(value, path)
        return kept
    if isinstance(tree, list):
        return [without_secrets(item, key) for item in tree]
    return tree


def entry_point_changes(
    build: ImageBuild, install_globally_python: str | None, original_cmd: Any
) -> list[str]:
    """The Dockerfile instructions the commit applies."""
    changes = [f"ENV CLEARML_CONFIG_FILE={IMAGE_CONFIG}"]
    if not install_globally_python:
        changes += [
            f"ENV VIRTUAL_ENV={VENV}",
            f"ENV PATH={VENV}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        ]
    if build.entry_point in ("reuse_task", "clone_task"):
        command = [
            f"{AGENT}/bin/clearml-core",
            "agent",
            "execute",
            "--id",
            build.task_id,
            "--standalone-mode",
        ]
        if build.entry_point == "clone_task":
            command.append("--clone")
        changes += [f"ENTRYPOINT {json.dumps(command)}", "CMD []"]
    else:
        changes += ["ENTRYPOINT []", f"CMD {json.dumps(original_cmd or ['/bin/sh'])}"]
    return changes


def build_image(environment: DockerEnvironment, build: ImageBuild, plane: Any, sink: LogSink) -> str:
    """See the module docstring; returns the new image's id."""
    from clearml_core.agent.identity import state_dir
    from clearml_core.agent.stages.prepare_workdir import COPY_IGNORE

    config = environment._settings()
    task = plane.get_task(build.task_id)
    default = default_image(config, build.image, build.image_args)
    if build.force_image:
        default = DefaultImage(default.image, default.arguments, True)
    selection = select(task, default, config, force_default=build.force_image)
    if not selection.image:
        raise ExecutionError("no image to build from: the task names none; give one with --docker IMAGE")
    sink.write(
        "agent", f"clearml-core: building {build.target} from the {selection.describe()} for task {task.id}"
    )
    try:
        merged = docker_args.combined(config, selection.arguments)
        options = translate(merged.tokens)
    except ArgumentError as error:
        raise ExecutionError(str(error)) from None
    scratch = Path(tempfile.mkdtemp(prefix="build-", dir=_builds_dir(state_dir())))
    try:
        run_dir = scratch / "run"
        run_dir.mkdir(mode=0o700)
        work = scratch / "work"
        work.mkdir()
        if task.script.source == "folder":
            folder = Path(task.script.folder).expanduser()
            if not folder.is_dir():
                raise ExecutionError(f"the task's folder {folder} does not exist on this machine")
            shutil.copytree(folder, work / "code", ignore=shutil.ignore_patterns(*COPY_IGNORE), symlinks=True)
        url = _control_plane_url(plane, config)
        request = ContainerRequest(
            image=selection.image,
            command=bootstrap.command(),
            environment={"CLEARML_CONFIG_FILE": f"{layout.RUN}/clearml.json", "PYTHONUNBUFFERED": "1"},
            mounts=options.mounts,
            labels={BUILD_LABEL: task.id},
            create={**options.create, "network_mode": options.network or "host"},
            pull=options.pull
            or ("always" if config.get_bool("agent.docker_force_pull", False) else "missing"),
        )
        request.create.pop("name", None)
        spec = LaunchSpec(
            argv=request.command, cwd=work, env={}, image=selection.image, extra={"container": request}
        )
        spec = environment.prepare(spec, sink)
        prepared = spec.extra["prepared"]
        client = spec.extra["client"]
        mounts = [layout.Mount(run_dir, layout.RUN), layout.Mount(work, str(work)), *prepared.mounts()]
        if config.get_bool("agent.pip_download_cache.enabled", True):
            mounts += [
                m for m in layout.cache_mounts(config) if m.target == layout.internal(config, "pip_download")
            ]
        binds, _notes = layout.HostMounts().binds(mounts)
        request.binds = [*options.binds, *binds]
        tree = layout.container_config(config, control_plane=url, build=True)
        (run_dir / "clearml.json").write_text(json.dumps(tree, default=str), encoding="utf-8")
        (run_dir / "image.json").write_text(json.dumps(without_secrets(tree), default=str), encoding="utf-8")
        envelope = {
            "task": task.to_dict(),
            "worker_id": "build",
            "work_dir": str(work),
            "gpus": build.gpus,
            "image_key": prepared.image_id,
            "build": {
                "venv": VENV,
                "install_globally": build.install_globally,
                "python_version": build.python_version,
                "image_config": f"{layout.RUN}/image.json",
                "config_target": IMAGE_CONFIG,
            },
        }
        (run_dir / "task.json").write_text(json.dumps(envelope, default=str), encoding="utf-8")
        (run_dir / "env").write_text(bootstrap.env_file(options.environment), encoding="utf-8")
        command = ["-m", "clearml_core_runner_docker.inner", "build", f"{layout.RUN}/task.json"]
        (run_dir / "agent.json").write_text(
            json.dumps(prepared.agent_plan(command, venv=AGENT)), encoding="utf-8"
        )
        (run_dir / "start_agent.py").write_text(prepared.start_script(), encoding="utf-8")
        (run_dir / "bootstrap.sh").write_text(
            bootstrap.script(
                config,
                setup_script=selection.setup_script,
                install_globally=build.install_globally,
                start=prepared.start_command(),
                after=["rm -rf /root/.cache/pip"],  # what pip kept of the build, not the image's
            ),
            encoding="utf-8",
        )
        original_cmd = _image_cmd(client, selection.image)
        container = create(client, request)
        execution = DockerExecution(client, container, sink)
        try:
            execution.begin()
            code = execution.wait()
            result = _result(run_dir)
            if result is None or result.get("status") != "completed":
                reason = (result or {}).get("reason") or f"the build container exited with code {code}"
                raise ExecutionError(str(reason))
            python = result.get("python") if build.install_globally else None
            changes = entry_point_changes(build, python, original_cmd)
            repository, _, tag = (
                build.target.rpartition(":") if ":" in build.target.split("/")[-1] else (build.target, "", "")
            )
            try:
                image = container.commit(
                    repository=repository or build.target, tag=tag or "latest", changes=changes
                )
            except api_errors() as error:
                raise ExecutionError(f"committing the build container failed: {short_error(error)}") from None
            return str(image.id)
        finally:
            execution.remove()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _builds_dir(state: Path) -> Path:
    folder = state / "builds"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _control_plane_url(plane: Any, config: Any) -> str:
    path = getattr(plane, "path", None)
    if isinstance(path, Path):
        return f"sqlite:///{path}"
    return str(getattr(plane, "url", "") or config.get_str("agent.control_plane", ""))


def _image_cmd(client: Any, reference: str) -> Any:
    try:
        return client.images.get(reference).attrs.get("Config", {}).get("Cmd")
    except api_errors():
        return None


def _result(run_dir: Path) -> dict[str, Any] | None:
    try:
        return dict(json.loads((run_dir / "result.json").read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return None


__all__ = ["build_image", "entry_point_changes", "without_secrets"]
