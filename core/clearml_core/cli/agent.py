"""``clearml-core agent``: the daemon that pulls tasks from queues, running one task by id, and
building a task's environment in a folder (``agent build``).

``--queue``, ``--uptime``, ``--downtime``, ``--docker``, ``--podman``, ``--stop`` and
``--child-report-tags`` take several values after one flag, as clearml-agent's do (``--queue high
low``); ``--services-mode``, ``--docker``, ``--podman`` and ``--stop`` may also stand alone. The
flags all three commands share with clearml-agent are in :mod:`clearml_core.cli.agent_flags`. The
agent modules load inside the commands so ``--help`` stays fast.

The module is long (about 700 lines) because it is clearml-agent's command line: three commands
with many flags each, every flag's help and translation kept beside its command. What the
commands do is in :mod:`clearml_core.agent`.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import typer
from typer.core import TyperCommand

from clearml_core.cli.output import echo, echo_json, table
from clearml_core.errors import UserError

app = typer.Typer(help="The agent: run a daemon that executes queued tasks, or execute one task.")

MULTI_VALUE = (
    "--queue",
    "-q",
    "--uptime",
    "--downtime",
    "--docker",
    "--podman",
    "--stop",
    "--child-report-tags",
)
OPTIONAL_VALUE = {"--services-mode": "0", "--docker": "", "--podman": "", "--stop": ""}
DETACHED_LOG_VARIABLE = "CLEARML_CORE_DAEMON_LOG"


def expand_multi_value(args: list[str]) -> list[str]:
    """``--queue a b --docker`` → ``--queue a --queue b --docker ''``: argparse's nargs for click."""
    out: list[str] = []
    index = 0
    while index < len(args):
        arg = args[index]
        if arg == "--":
            out.extend(args[index:])
            break
        name, eq, value = arg.partition("=")
        if name not in MULTI_VALUE and name not in OPTIONAL_VALUE:
            out.append(arg)
            index += 1
            continue
        values = [value] if eq else []
        index += 1
        if not eq:
            while index < len(args) and not args[index].startswith("-"):
                if name == "--services-mode" and (values or not args[index].isdigit()):
                    break
                if name not in MULTI_VALUE and values:
                    break
                values.append(args[index])
                index += 1
        if not values and name in OPTIONAL_VALUE:
            values = [OPTIONAL_VALUE[name]]
        if not values:
            out.append(name)  # click reports the missing value
        for item in values:
            out.extend([name, item])
    return out


class MultiValueCommand(TyperCommand):
    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        return super().parse_args(ctx, expand_multi_value(list(args)))


def _daemon_logging(detached: bool) -> None:
    """Daemon messages carry a timestamp; a detached daemon writes them to its log file."""
    root = logging.getLogger("clearml_core")
    for handler in root.handlers:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%d %H:%M:%S"))
    if detached:
        for handler in root.handlers:
            if isinstance(handler, logging.StreamHandler):
                handler.setStream(sys.stdout)


def _git_user_option() -> Any:
    return typer.Option(None, "--git-user", help="Git user for the tasks' repositories (agent.git_user).")


def _git_pass_option() -> Any:
    return typer.Option(
        None,
        "--git-pass",
        help="Git password or token (agent.git_pass); CLEARML_AGENT_GIT_PASS keeps it off the command line.",
    )


def _log_level_option() -> Any:
    return typer.Option(
        None,
        "--log-level",
        help="Level of the agent's messages, also given to the tasks as CLEARML_LOG_LEVEL.",
    )


def _optimization_option() -> Any:
    return typer.Option(0, "-O", count=True, help="Run the task's Python with -O (repeat: -OO).")


def _standalone_option() -> Any:
    return typer.Option(
        False, "--standalone-mode", help="Install nothing: the task runs with the agent's Python as it is."
    )


def _execution_env_option() -> Any:
    return typer.Option(
        None,
        "--execution-env",
        help="The execution environment to run tasks in: venv, or one a plugin provides (agent.execution_env).",
    )


@app.command("daemon", cls=MultiValueCommand)
def daemon(
    queue: list[str] | None = typer.Option(
        None, "--queue", "-q", help="Queues to serve, highest priority first (--queue high low)."
    ),
    order_fairness: bool = typer.Option(
        False, "--order-fairness", help="Take from the queues in turn instead of by priority."
    ),
    polling_interval: float | None = typer.Option(
        None, "--polling-interval", help="Seconds between looks at empty queues (agent.polling_interval_sec)."
    ),
    create_queue: bool = typer.Option(False, "--create-queue", help="Create the queues that do not exist."),
    foreground: bool = typer.Option(False, "--foreground", help="Show the tasks' output on the console."),
    detached: bool = typer.Option(
        False,
        "--detached",
        "-d",
        help="Run in the background (pid and log files under ~/.clearml-core/agent).",
    ),
    stop: list[str] | None = typer.Option(
        None,
        "--stop",
        help="Stop running daemons (all, or those named: worker ids or queues); they finish their task first.",
    ),
    force: bool = typer.Option(False, "--force", help="With --stop: abort the running tasks."),
    stop_when_empty: bool = typer.Option(False, "--stop-when-empty", help="Exit once the queues are empty."),
    gpus: str | None = typer.Option(None, "--gpus", help="Pin tasks to these GPUs: 0,1 or 0-3."),
    cpu_only: bool = typer.Option(False, "--cpu-only", help="Hide every GPU from the tasks."),
    dynamic_gpus: bool = typer.Option(
        False, "--dynamic-gpus", help="Give each task the GPUs its queue asks for: --queue dual=2 any=1-4."
    ),
    uptime: list[str] | None = typer.Option(
        None, "--uptime", help='Work only in these hours: "17-20 MON-FRI" "10-16 SAT".'
    ),
    downtime: list[str] | None = typer.Option(
        None, "--downtime", help='Idle in these hours: "09-18 MON-FRI".'
    ),
    services_mode: int | None = typer.Option(
        None, "--services-mode", help="Run several tasks at once: up to N (alone: no limit)."
    ),
    docker: list[str] | None = typer.Option(
        None,
        "--docker",
        help="Run tasks in containers: [IMAGE [ARGS...]] (needs a docker execution environment).",
    ),
    podman: list[str] | None = typer.Option(
        None,
        "--podman",
        help="As --docker, with podman: [IMAGE [ARGS...]] (needs a docker execution environment).",
    ),
    force_current_version: bool = typer.Option(
        False, "--force-current-version", help="Docker mode: run this agent's version in the container."
    ),
    execution_env: str | None = _execution_env_option(),
    standalone_mode: bool = _standalone_option(),
    child_report_tags: list[str] | None = typer.Option(
        None, "--child-report-tags", help="Tags reported with the worker that runs the tasks: TAG [TAG ...]."
    ),
    use_owner_token: bool = typer.Option(
        False,
        "--use-owner-token",
        help="Accepted from clearml-agent; no effect here (no task is handed its owner's credentials).",
    ),
    optimization: int = _optimization_option(),
    git_user: str | None = _git_user_option(),
    git_pass: str | None = _git_pass_option(),
    log_level: str | None = _log_level_option(),
    status: bool = typer.Option(False, "--status", help="List the daemons running on this machine."),
    as_json: bool = typer.Option(False, "--json", help="With --status: print JSON."),
) -> None:
    """Pull tasks from queues and run them, like clearml-agent daemon."""
    from clearml_core.agent import daemon as daemon_module
    from clearml_core.agent.context import RunOptions
    from clearml_core.cli import agent_flags

    queues = list(queue or [])
    if status:
        _print_status(as_json)
        return
    if stop is not None:
        _stop([name for name in stop if name] + queues, force)
        return
    if force:
        raise UserError("--force goes with --stop (clearml-core agent daemon --stop --force)")
    agent_flags.apply_git_credentials(git_user, git_pass)
    task_environ = agent_flags.apply_log_level(log_level)
    tags = list(child_report_tags or [])
    task_environ.update(agent_flags.worker_tags_environ(tags))
    options = _options(
        queues,
        order_fairness=order_fairness,
        polling_interval=polling_interval,
        create_queue=create_queue,
        foreground=foreground,
        stop_when_empty=stop_when_empty,
        gpus=gpus,
        cpu_only=cpu_only,
        dynamic_gpus=dynamic_gpus,
        uptime=uptime or [],
        downtime=downtime or [],
        services_mode=services_mode,
        docker=docker,
        podman=podman,
        force_current_version=force_current_version,
        execution_env=execution_env,
    )
    options.worker_tags = tags
    options.use_owner_token = use_owner_token
    options.run_options = RunOptions(
        optimization=optimization,
        standalone=standalone_mode,
        environ=task_environ,
        launch_extra=options.run_options.launch_extra,
    )
    if detached:
        _detach()
        return
    _daemon_logging(detached=bool(os.environ.get(DETACHED_LOG_VARIABLE)))
    options.detached_log = os.environ.get(DETACHED_LOG_VARIABLE) or None
    raise typer.Exit(daemon_module.Daemon(options).run())


def _options(queues: list[str], **flags: Any) -> Any:
    from clearml_core.agent.context import RunOptions
    from clearml_core.agent.daemon import DaemonOptions
    from clearml_core.agent.gpus import parse_gpus, parse_queue_requests
    from clearml_core.agent.schedule import join_entries

    if not queues:
        raise UserError("name the queues to serve: clearml-core agent daemon --queue NAME [NAME ...]")
    if flags["cpu_only"] and (flags["gpus"] or flags["dynamic_gpus"]):
        raise UserError("--cpu-only cannot go with --gpus or --dynamic-gpus")
    requests = None
    if flags["dynamic_gpus"]:
        requests = parse_queue_requests(queues)
        queues = [request.queue for request in requests]
    elif any("=" in name for name in queues):
        raise UserError(
            f"queue names with =N ({', '.join(q for q in queues if '=' in q)}) ask for GPUs per queue; "
            "add --dynamic-gpus"
        )
    if flags["services_mode"] is not None and flags["services_mode"] < 0:
        raise UserError("--services-mode N needs N ≥ 0 (0 or no value: no limit)")
    if flags["services_mode"] is not None and requests is not None:
        raise UserError(
            "--services-mode and --dynamic-gpus cannot be combined (clearml-agent refuses it too)"
        )
    gpus = [] if flags["cpu_only"] else parse_gpus(flags["gpus"])
    environment, image, image_args, extra = _environment_flags(
        flags["execution_env"],
        docker=flags["docker"],
        podman=flags["podman"],
        force_current_version=flags["force_current_version"],
    )
    if flags["services_mode"] is not None:
        extra["services_mode"] = True  # a container environment gives each service its own worker id
    return DaemonOptions(
        queues=queues,
        queue_requests=requests,
        order_fairness=flags["order_fairness"],
        polling_interval=flags["polling_interval"],
        create_queue=flags["create_queue"],
        foreground=flags["foreground"],
        stop_when_empty=flags["stop_when_empty"],
        gpus=gpus,
        dynamic_gpus=flags["dynamic_gpus"],
        uptime=join_entries(flags["uptime"]),
        downtime=join_entries(flags["downtime"]),
        services_mode=flags["services_mode"],
        execution_environment=environment,
        docker_image=image,
        docker_args=image_args,
        run_options=RunOptions(launch_extra=extra),
    )


def _environment_flags(
    execution_env: str | None,
    *,
    docker: list[str] | None,
    podman: list[str] | None = None,
    force_current_version: bool = False,
) -> tuple[str, str | None, list[str], dict[str, Any]]:
    """The execution environment the flags ask for, loaded now so a missing plugin or an unknown
    name stops the command at once: (name, image, image arguments, what else it is told)."""
    from clearml_core.agent.execution_env import first_flag, open_environment
    from clearml_core.settings import get_config

    docker_flag = first_flag(
        {"--docker": docker, "--podman": podman, "--force-current-version": force_current_version}
    )
    name, _environment = open_environment(get_config(), execution_env, docker_flag)
    values = [value for value in (docker if docker is not None else podman or []) if value]
    extra: dict[str, Any] = {}
    if podman is not None:
        extra["podman"] = True
    if force_current_version:
        extra["force_current_version"] = True
    return name, (values[0] if values else None), values[1:], extra


def _child_argv() -> list[str]:
    """This command line again, without --detached / -d, and without --git-user / --git-pass,
    which reach the background daemon through its environment (see agent_flags)."""
    from clearml_core.cli.agent_flags import without_options

    argv = sys.argv[1:]
    if "daemon" not in argv:
        raise UserError("cannot work out the daemon's command line to start it in the background")
    at = argv.index("daemon")
    head = [arg for arg in argv[:at] if arg == "--debug"]
    rest = [arg for arg in argv[at + 1 :] if arg not in ("--detached", "-d")]
    rest = without_options(rest, {"--git-user", "--git-pass"})
    return [sys.executable, "-m", "clearml_core.cli.main", *head, "agent", "daemon", *rest]


def _detach() -> None:
    import subprocess

    from clearml_core.agent.identity import agent_dir
    from clearml_core.agent.run_records import run_records

    logs = agent_dir() / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    log_path = logs / f"daemon-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}.log"
    env = dict(os.environ)
    env[DETACHED_LOG_VARIABLE] = str(log_path)
    with open(log_path, "ab") as log_file:
        child = subprocess.Popen(
            _child_argv(),
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
            close_fds=True,
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        record = next((r for r in run_records() if r.pid == child.pid), None)
        if record is not None:
            echo(f"daemon started in the background: worker {record.worker_id}, pid {child.pid}")
            echo(f"control plane: {record.control_plane}")
            echo(f"log: {log_path}")
            echo("stop it with: clearml-core agent daemon --stop")
            return
        if child.poll() is not None:
            tail = _tail(log_path)
            raise UserError(f"the daemon did not start (exit code {child.returncode}):\n{tail}")
        time.sleep(0.1)
    raise UserError(f"the daemon (pid {child.pid}) did not report for 60 s; see {log_path}")


def _tail(path: Path, lines: int = 20) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.rstrip().splitlines()[-lines:])


def _stop(names: list[str], force: bool) -> None:
    """``--stop [NAME ...]`` (and ``--stop --queue Q``): a name is a worker id or a queue."""
    from clearml_core.agent.run_records import stop_daemons

    names = [name.split("=")[0] for name in names]
    results = stop_daemons(names, force=force, wait=10.0 if not force else 15.0)
    if not results:
        which = f" with worker id or queue {', '.join(names)}" if names else ""
        raise UserError(f"no clearml-core daemon{which} runs on this machine for this user")
    for record, exited in results:
        if exited:
            echo(f"stopped daemon {record.worker_id} (pid {record.pid})")
        else:
            echo(
                f"daemon {record.worker_id} (pid {record.pid}) is finishing its running task and exits after it"
            )


def _print_status(as_json: bool) -> None:
    from clearml_core.agent.run_records import run_records

    records = run_records()
    if as_json:
        echo_json(
            [
                {
                    "pid": r.pid,
                    "worker_id": r.worker_id,
                    "queues": r.queues,
                    "detached": r.detached,
                    "log": r.log,
                }
                for r in records
            ]
        )
        return
    table(
        ["PID", "WORKER", "QUEUES", "LOG"],
        [(r.pid, r.worker_id, ",".join(r.queues), r.log or "(console)") for r in records],
    )


@app.command("execute", cls=MultiValueCommand)
def execute(
    task_id: str = typer.Option(..., "--id", help="The task to run."),
    clone: bool = typer.Option(
        False, "--clone", help="Run a copy of the task and leave the original as it is."
    ),
    docker: list[str] | None = typer.Option(
        None, "--docker", help="Run in a container: [IMAGE [ARGS...]] (needs a docker execution environment)."
    ),
    podman: list[str] | None = typer.Option(
        None,
        "--podman",
        help="As --docker, with podman: [IMAGE [ARGS...]] (needs a docker execution environment).",
    ),
    execution_env: str | None = _execution_env_option(),
    gpus: str | None = typer.Option(None, "--gpus", help="Pin the task to these GPUs: 0,1 or 0-3."),
    cpu_only: bool = typer.Option(False, "--cpu-only", help="Hide every GPU from the task."),
    log_file: Path | None = typer.Option(
        None, "--log-file", help="Also write the task's output (stdout and stderr) to this file."
    ),
    disable_monitoring: bool = typer.Option(
        False, "--disable-monitoring", help="Report no machine stats (heartbeats only say the worker lives)."
    ),
    full_monitoring: bool = typer.Option(
        False,
        "--full-monitoring",
        help="Report as a daemon's worker does: version, environment, GPUs, queue.",
    ),
    require_queue: bool = typer.Option(
        False, "--require-queue", help="Fail (exit 2) unless the task waits in a queue."
    ),
    standalone_mode: bool = _standalone_option(),
    optimization: int = _optimization_option(),
    git_user: str | None = _git_user_option(),
    git_pass: str | None = _git_pass_option(),
    log_level: str | None = _log_level_option(),
    quiet: bool = typer.Option(False, "--quiet", help="Do not print the task's output."),
    as_json: bool = typer.Option(False, "--json", help="Print the outcome as JSON."),
) -> None:
    """Run one task now, without a queue; exits with 0 when it completes."""
    from clearml_core.agent.context import RunOptions
    from clearml_core.agent.execute import execute_task
    from clearml_core.agent.gpus import parse_gpus
    from clearml_core.cli import agent_flags
    from clearml_core.controlplane import TaskStatus, open_control_plane
    from clearml_core.settings import get_config

    if disable_monitoring and full_monitoring:
        raise UserError("--disable-monitoring and --full-monitoring ask for opposite things; give one")
    if require_queue and clone:
        raise UserError("--require-queue cannot go with --clone: a clone is new and waits in no queue")
    agent_flags.apply_git_credentials(git_user, git_pass)
    task_environ = agent_flags.apply_log_level(log_level)
    config = get_config()
    plane = open_control_plane(config=config)
    devices = [] if cpu_only else parse_gpus(gpus)
    if devices is None and config.get_bool("agent.cpu_only", False):
        devices = []
    environment, image, image_args, extra = _environment_flags(execution_env, docker=docker, podman=podman)
    task = plane.get_task(task_id)
    if require_queue and task.status != TaskStatus.QUEUED:
        raise UserError(
            f"task {task.id} is not queued (it is {TaskStatus(task.status).value}); "
            "--require-queue runs a task only while it waits in a queue"
        )
    log_path = _writable_log_file(log_file)
    if clone:
        task = plane.clone(task_id)
        echo(f"running a clone of {task_id}: {task.id}", err=as_json)
    wid, heartbeat = _register_execute_worker(
        plane,
        config,
        devices,
        environment=environment,
        queue=task.queue,
        stats=not disable_monitoring,
        full=full_monitoring,
    )
    try:
        heartbeat.start()
        task = plane.start(task.id, wid)
        outcome = execute_task(
            plane,
            task,
            config=config,
            worker_id=wid,
            gpus=devices,
            environment=environment,
            image=image,
            image_args=image_args,
            console=not quiet and not as_json,
            options=RunOptions(
                optimization=optimization,
                standalone=standalone_mode,
                environ=task_environ,
                launch_extra=extra,
            ),
            log_file=log_path,
        )
    finally:
        heartbeat.finish()
        plane.unregister_worker(wid)
    if as_json:
        echo_json(
            {
                "id": outcome.task_id,
                "status": outcome.status.value,
                "reason": outcome.reason,
                "exit_code": outcome.exit_code,
            }
        )
    else:
        echo(
            f"task {outcome.task_id} {outcome.status.value}"
            + (f": {outcome.reason}" if outcome.reason else "")
        )
    if outcome.status.value != "completed":
        raise typer.Exit(outcome.exit_code if outcome.exit_code and outcome.exit_code > 0 else 1)


def _writable_log_file(path: Path | None) -> Path | None:
    """``--log-file``: checked before the task starts (a typo must not cost a run)."""
    if path is None:
        return None
    path = path.expanduser().absolute()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8"):
            pass
    except OSError as error:
        raise UserError(f"--log-file {path}: cannot write it ({error.strerror or error})") from None
    return path


def _register_execute_worker(
    plane: Any,
    config: Any,
    devices: list[str] | None,
    *,
    environment: str,
    queue: str | None,
    stats: bool,
    full: bool,
) -> tuple[str, Any]:
    """The worker ``agent execute`` runs the task as, and its heartbeat thread (not started).

    Heartbeats carry machine stats unless ``stats`` is false (``--disable-monitoring``); the
    tags a daemon handed down (``CLEARML_WORKER_TAGS``) go with them. ``full``
    (``--full-monitoring``) makes the record a daemon's: version, environment, GPUs, its queue.
    """
    from clearml_core import __version__
    from clearml_core.agent.heartbeat import Heartbeat, report_period
    from clearml_core.agent.identity import gpu_suffix, worker_id, worker_name
    from clearml_core.cli.agent_flags import worker_tags_from_environment

    wid = worker_id(config, suffix=gpu_suffix(devices))
    info: dict[str, Any] = {"hostname": socket.gethostname(), "pid": os.getpid(), "mode": "execute"}
    tags = worker_tags_from_environment() if stats else []
    if tags:
        info["tags"] = tags
    if full:
        info.update(
            version=__version__,
            gpus=devices,
            execution_environment=environment,
            started=time.time(),
            monitoring="full",
        )
    queues = [queue] if full and queue else []
    plane.register_worker(wid, name=worker_name(config), queues=queues, info=info)
    return wid, Heartbeat(plane, wid, report_period(config), stats=stats, gpus=devices)


@app.command("build", cls=MultiValueCommand)
def build(
    task_id: str = typer.Option(..., "--id", help="The task whose Python environment to build."),
    target: Path = typer.Option(..., "--target", help="A new or empty folder to build it in."),
    python_version: str | None = typer.Option(
        None, "--python-version", help="Build with this Python (3.11: python3.11 on PATH)."
    ),
    install_globally: bool = typer.Option(
        False,
        "--install-globally",
        help="Install the packages into the Python itself; the environment sees them (system site packages).",
    ),
    gpus: str | None = typer.Option(
        None, "--gpus", help="Build for these GPUs' CUDA, even with agent.cpu_only."
    ),
    cpu_only: bool = typer.Option(False, "--cpu-only", help="Build for CPU only (CPU wheels of PyTorch)."),
    docker: list[str] | None = typer.Option(
        None,
        "--docker",
        help="Build a container image instead: [IMAGE [ARGS...]] (needs a docker execution environment).",
    ),
    force_docker: bool = typer.Option(
        False, "--force-docker", help="Docker mode: use the --docker image, not the task's."
    ),
    entry_point: str | None = typer.Option(
        None, "--entry-point", help="Docker mode: reuse_task or clone_task (what the image runs)."
    ),
    git_user: str | None = _git_user_option(),
    git_pass: str | None = _git_pass_option(),
    log_level: str | None = _log_level_option(),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Build a task's Python environment in a folder, exactly as the agent would run it."""
    from clearml_core.agent.execution_env import DOCKER_ENVIRONMENT, first_flag
    from clearml_core.agent.gpus import parse_gpus
    from clearml_core.cli import agent_flags
    from clearml_core.cli.output import is_terminal
    from clearml_core.controlplane import open_control_plane
    from clearml_core.environments.materialize import build_task_environment
    from clearml_core.runners.base import load_environment
    from clearml_core.settings import get_config

    if entry_point is not None and entry_point not in ("reuse_task", "clone_task"):
        raise UserError(f"--entry-point is reuse_task or clone_task, not {entry_point!r}")
    docker_flag = first_flag(
        {"--docker": docker, "--force-docker": force_docker, "--entry-point": entry_point}
    )
    if cpu_only and gpus is not None:
        raise UserError("--cpu-only cannot go with --gpus")
    if docker_flag is not None:
        _build_image(
            load_environment(DOCKER_ENVIRONMENT, get_config(), asked_by=docker_flag),
            task_id,
            str(target),
            docker=[value for value in docker or [] if value],
            entry_point=entry_point,
            python_version=python_version,
            install_globally=install_globally,
            force_docker=force_docker,
            gpus=[] if cpu_only else parse_gpus(gpus),
            credentials=(git_user, git_pass, log_level),
            as_json=as_json,
        )
        return
    agent_flags.apply_git_credentials(git_user, git_pass)
    agent_flags.apply_log_level(log_level)
    if install_globally:
        agent_flags.apply_system_site_packages()
    devices = [] if cpu_only else parse_gpus(gpus)
    config = get_config()
    plane = open_control_plane(config=config)
    prepared = build_task_environment(
        plane,
        task_id,
        target,
        config=config,
        interactive=is_terminal() and not as_json,
        python_version=python_version,
        install_globally=install_globally,
        gpus=devices,
    )
    env = prepared.env
    assert env is not None
    if as_json:
        echo_json(
            {
                "id": task_id,
                "target": str(env.path),
                "python": prepared.python,
                "manager": prepared.manager,
                "seconds": round(prepared.seconds, 3),
                "packages": prepared.frozen,
                "summary": prepared.summary,
            }
        )
        return
    echo(
        f"built the environment of task {task_id} in {env.path} ({len(prepared.frozen)} packages, "
        f"{prepared.manager}, {prepared.seconds:.1f} s)"
    )
    echo(f"python:   {prepared.python}")
    if (env.bin_dir / "activate").is_file():
        echo(f"activate: source {env.bin_dir / 'activate'}")
    elif prepared.environ.get("CONDA_PREFIX"):
        echo(f"activate: conda activate {env.path}")


def _build_image(
    environment: Any,
    task_id: str,
    target: str,
    *,
    docker: list[str],
    entry_point: str | None,
    python_version: str | None,
    install_globally: bool,
    force_docker: bool,
    gpus: list[str] | None,
    credentials: tuple[str | None, str | None, str | None],
    as_json: bool,
) -> None:
    """``agent build --docker``: the execution environment builds the image ``target``."""
    from clearml_core.cli import agent_flags
    from clearml_core.controlplane import open_control_plane
    from clearml_core.runners.base import ExecutionError, ImageBuild
    from clearml_core.runners.output import ConsoleSink, MemorySink, TeeSink
    from clearml_core.settings import get_config

    git_user, git_pass, log_level = credentials
    agent_flags.apply_git_credentials(git_user, git_pass)
    agent_flags.apply_log_level(log_level)
    if force_docker and not docker:
        raise UserError(
            "--force-docker uses the --docker image instead of the task's: give one (--docker IMAGE)"
        )
    plane = open_control_plane(config=get_config())
    plane.get_task(task_id)  # an unknown id is a one-line error before anything is built
    request = ImageBuild(
        task_id=task_id,
        target=target,
        image=docker[0] if docker else None,
        image_args=tuple(docker[1:]),
        entry_point=entry_point,
        python_version=python_version,
        install_globally=install_globally,
        force_image=force_docker,
        gpus=gpus,
    )
    tail = MemorySink(keep=20)
    sink = TeeSink(tail, None if as_json else ConsoleSink())
    try:
        image_id = environment.build_image(request, plane, sink)
    except ExecutionError as error:
        raise UserError(f"building the image {target} failed: {error}") from None
    if as_json:
        echo_json({"id": task_id, "image": target, "image_id": image_id, "entry_point": entry_point})
        return
    runs = {"reuse_task": "runs the task", "clone_task": "runs a clone of the task"}.get(entry_point or "")
    echo(f"built the image {target} ({image_id[:19]}) of task {task_id}")
    echo(f"docker run {target}: " + (runs or "a shell with the task's environment (no entry point)"))
