"""The agent inside the container: the rest of the task's pipeline, with the container's Python.

Run as ``python -m clearml_core_runner_docker.inner run|build /clearml-core/run/task.json`` by the
environment :mod:`clearml_core_runner_docker.container.start_agent` set up. The host agent already
made the task's folder (``prepare_workdir``, mounted here at the same path) and records
everything; this process only does what must happen in the container and reports back:

* ``run``: the ``code`` stage (through the mounted VCS cache), the ``environment`` stage (the
  container's interpreter, the mounted environment cache, keyed on the image) and the ``run``
  stage (the entry point, as a local process of the container). Its lines go to stdout / stderr,
  which the host streams into the task's log; what the host records (the reason of a failure, the
  checked-out commit, the environment, the frozen packages, the stages' timings) goes to
  ``result.json`` beside ``task.json``. SIGTERM (the host stopping the container: an abort, a
  timeout) aborts the task's process tree.
* ``build`` (``agent build --docker``): the task's code and environment made part of the container,
  at paths that are not mounted, so that committing the container keeps them.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from clearml_core.agent.context import RunOptions, TaskAborted, TaskContext, TaskFailed
from clearml_core.agent.pipeline import Pipeline
from clearml_core.runners.base import LaunchSpec, LogSink
from clearml_core.runners.local import LocalExecution, LocalProcessEnvironment

IMAGE_VENV_VARIABLE = "CLEARML_CORE_IMAGE_VIRTUAL_ENV"
"""The virtual environment the image itself activated (its ``VIRTUAL_ENV``), when it has one."""


class StreamSink:
    """The task's lines on this process's stdout / stderr, for the host to read."""

    def write(self, stream: str, line: str) -> None:
        out = sys.stderr if stream == "stderr" else sys.stdout
        out.write(line + "\n")
        out.flush()

    def flush(self) -> None:
        sys.stdout.flush()
        sys.stderr.flush()

    def close(self) -> None:
        self.flush()


class InContainer(LocalProcessEnvironment):
    """The ``docker`` environment as seen from inside its container: the entry point is a local
    process here. Named ``docker`` so that the environment stage keys its cache on the image."""

    name = "docker"

    def start(self, spec: LaunchSpec, sink: LogSink) -> LocalExecution:
        return super().start(dataclasses.replace(spec, image=None, image_args=()), sink)


class AdoptWorkdir:
    """The task's folder as the host prepared it (``code/`` of a folder task, ``output/``)."""

    name = "prepare_workdir"

    def run(self, ctx: TaskContext) -> None:
        ctx.output_dir = ctx.work_dir / "output"
        ctx.output_dir.mkdir(parents=True, exist_ok=True)
        code = ctx.work_dir / "code"
        if ctx.task.script.source != "git":
            code.mkdir(exist_ok=True)
            ctx.code_dir = code


class ImageVenvEnvironment:
    """``agent.docker_use_activated_venv``: the image activated a virtual environment of its own;
    the task's packages go into it and the task runs with its Python (a new environment could not
    see the image's packages), as clearml-agent does."""

    name = "environment"

    def __init__(self, venv: Path) -> None:
        self.venv = venv

    def run(self, ctx: TaskContext) -> None:
        from clearml_core.agent.stages.environment import STATE_KEY
        from clearml_core.environments.builder import EnvironmentBuilder
        from clearml_core.environments.process import BuildAborted, BuildFailed, BuildLog
        from clearml_core.environments.protocol import PythonEnv
        from clearml_core.environments.python import find_python

        started = time.monotonic()
        log = BuildLog(ctx.sink.write, should_stop=lambda: ctx.stop.reason if ctx.stop.is_set() else None)
        env = PythonEnv(self.venv)
        ctx.log(f"the image activated the environment {self.venv}: installing the task's packages into it")
        try:
            builder = EnvironmentBuilder(ctx.config, cache=None)
            context = builder.context(
                code_dir=ctx.code_dir, working_dir=ctx.cwd, gpus=ctx.gpus, python=find_python(str(env.python))
            )
            plan = builder.plan(ctx.task, context, log)
            if plan.requirements:
                plan.manager.install(env, plan.requirements, plan.settings, log)
            frozen = plan.manager.freeze(env)
        except BuildAborted as aborted:
            raise TaskAborted(str(aborted) or "aborted") from None
        except BuildFailed as failed:
            raise TaskFailed(str(failed)) from None
        ctx.python = str(env.python)
        ctx.env.update(env.activation())
        ctx.task.requirements.frozen = list(frozen)
        ctx.task.runtime = {
            **(ctx.task.runtime or {}),
            STATE_KEY: {
                "source": "image-venv",
                "python": ctx.python,
                "seconds": round(time.monotonic() - started, 3),
                "path": str(self.venv),
                "packages": len(frozen),
            },
        }


def _stages(config: Any) -> list[Any]:
    from clearml_core.agent.stages.code import CodeStage
    from clearml_core.agent.stages.environment import PythonEnvironment
    from clearml_core.agent.stages.run import RunEntryPoint

    environment: Any = PythonEnvironment()
    image_venv = os.environ.get(IMAGE_VENV_VARIABLE, "").strip()
    if (
        image_venv
        and config.get_bool("agent.docker_use_activated_venv", True)
        and config.get_bool("agent.package_manager.system_site_packages", False)
    ):
        environment = ImageVenvEnvironment(Path(image_venv))
    return [AdoptWorkdir(), CodeStage(), environment, RunEntryPoint()]


def _context(envelope: dict[str, Any], config: Any, sink: LogSink) -> TaskContext:
    from clearml_core.controlplane.records import Task

    task = Task.from_dict(envelope["task"])
    task.timeout = None  # the host stops the container when the task runs out of time
    task.container.image = envelope["image_key"]  # what the environment cache keys on
    options = envelope.get("options", {})
    return TaskContext(
        task=task,
        config=config,
        worker_id=envelope["worker_id"],
        environment=InContainer(config),
        sink=sink,
        work_dir=Path(envelope["work_dir"]),
        gpus=envelope.get("gpus"),
        abort_grace=float(envelope.get("abort_grace", 1.0)),
        options=RunOptions(
            optimization=int(options.get("optimization", 0)),
            standalone=bool(options.get("standalone", False)),
            environ=dict(options.get("environ", {})),
        ),
    )


OOM_COUNTERS = (Path("/sys/fs/cgroup/memory.events"), Path("/sys/fs/cgroup/memory/memory.oom_control"))


def oom_kills() -> int:
    """How many processes the kernel killed for memory in this container's cgroup (v2, else v1)."""
    for path in OOM_COUNTERS:
        try:
            for line in path.read_text(encoding="utf-8").splitlines():
                name, _, value = line.partition(" ")
                if name == "oom_kill":
                    return int(value)
        except (OSError, ValueError):
            continue
    return 0


def run(envelope: dict[str, Any], result_path: Path) -> int:
    """The ``run`` command (see the module docstring); returns this process's exit code."""
    from clearml_core.settings import get_config

    sink = StreamSink()
    config = get_config()
    ctx = _context(envelope, config, sink)
    signal.signal(signal.SIGTERM, lambda _signum, _frame: ctx.stop.set("aborted"))
    pipeline = Pipeline(_stages(config))
    result: dict[str, Any] = {"status": "completed"}
    kills_before = oom_kills()
    try:
        pipeline.run(ctx)
    except TaskAborted as aborted:
        result.update(status="stopped", reason=str(aborted) or "aborted")
    except TaskFailed as failed:
        result.update(status="failed", reason=str(failed))
    except Exception as error:
        for line in traceback.format_exc().rstrip().splitlines():
            sink.write("agent", line)
        result.update(
            status="failed",
            reason=f"internal error of the agent in the container: {type(error).__name__}: {error}",
        )
    result.update(
        exit_code=ctx.result.exit_code,
        oom_killed=oom_kills() > kills_before,
        code=ctx.state.get("code"),
        environment=(ctx.task.runtime or {}).get("environment"),
        frozen=list(ctx.task.requirements.frozen or []),
        stages=[
            {"name": t.name, "seconds": round(t.seconds, 4), "outcome": t.outcome} for t in pipeline.timings
        ],
    )
    _write_json(result_path, result)
    sink.flush()
    if result["status"] == "completed":
        code = ctx.result.exit_code
        return 0 if code == 0 else (code if code and code > 0 else 128 + (-code if code else 1))
    return 1


def build(envelope: dict[str, Any], result_path: Path) -> int:
    """The ``build`` command: code and environment at unmounted paths of this container."""
    from clearml_core.agent.stages.code import CodeStage
    from clearml_core.environments.builder import EnvironmentBuilder
    from clearml_core.environments.process import BuildFailed, BuildLog
    from clearml_core.environments.python import find_python_version
    from clearml_core.errors import UserError
    from clearml_core.settings import get_config

    sink = StreamSink()
    config = get_config()
    ctx = _context(envelope, config, sink)
    spec = envelope["build"]
    result: dict[str, Any] = {"status": "completed"}
    try:
        task = ctx.task
        if task.script.source == "folder":
            # the folder as the task names it: `agent execute` in the image copies it from there
            folder = Path(task.script.folder).expanduser()
            shutil.rmtree(folder, ignore_errors=True)
            shutil.copytree(ctx.work_dir / "code", folder, symlinks=True)
            code_dir: Path | None = folder
        elif task.script.source == "git":
            CodeStage().run(ctx)  # into the image's own VCS cache, which `agent execute` reads
            code_dir = ctx.code_dir
        else:
            code_dir = None
        working_dir = (code_dir / (task.script.working_dir or ".")).resolve() if code_dir else None
        builder = EnvironmentBuilder(config, cache=None)
        interpreter = find_python_version(spec["python_version"]) if spec.get("python_version") else None
        context = builder.context(
            code_dir=code_dir, working_dir=working_dir, gpus=ctx.gpus, python=interpreter
        )
        log = BuildLog(sink.write)
        prepared = builder.build_at(
            task, context, log, Path(spec["venv"]), install_globally=bool(spec.get("install_globally"))
        )
        python = context.python.executable if spec.get("install_globally") else prepared.python
        result.update(python=python, frozen=list(prepared.frozen), code=ctx.state.get("code"))
        image_config = json.loads(Path(spec["image_config"]).read_text(encoding="utf-8"))
        image_config.setdefault("agent", {})["python_binary"] = python
        target = Path(spec["config_target"])
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(image_config, default=str), encoding="utf-8")
    except (TaskFailed, BuildFailed, UserError, OSError) as error:
        result.update(status="failed", reason=str(error))
    _write_json(result_path, result)
    return 0 if result["status"] == "completed" else 1


def _write_json(path: Path, data: dict[str, Any]) -> None:
    scratch = path.with_name(path.name + ".tmp")
    scratch.write_text(json.dumps(data, default=str), encoding="utf-8")
    os.replace(scratch, path)


def main(argv: list[str]) -> int:
    command, envelope_path = argv[1], Path(argv[2])
    envelope = json.loads(envelope_path.read_text(encoding="utf-8"))
    result_path = envelope_path.with_name("result.json")
    if command == "build":
        return build(envelope, result_path)
    return run(envelope, result_path)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
