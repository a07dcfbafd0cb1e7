"""clearml-agent's daemon flags with clearml-agent's meaning, through the real command: git
credentials, log level, standalone mode, ``--stop NAME``, child report tags, ``--use-owner-token``
and ``-O``."""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

import psutil
import pytest

from clearml_core.agent.run_records import run_records
from clearml_core.controlplane import ControlPlane, Parameters, Requirements, Script, Task, TaskStatus
from tests.vcs.conftest import HttpGit, Repos, serve

from ..helpers import run_cli
from .conftest import Daemons, Tasks, log_lines, wait_for

FAST = ("--polling-interval", "0.1")
WAITING_SCRIPT = """\
import pathlib, sys, time
print("ready", flush=True)
release = pathlib.Path(sys.argv[1])
deadline = time.time() + 60
while not release.exists() and time.time() < deadline:
    time.sleep(0.05)
"""


def _command_lines(pid: int) -> list[str]:
    """The command lines of a process and all its descendants."""
    root = psutil.Process(pid)
    lines = []
    for process in [root, *root.children(recursive=True)]:
        try:
            lines.append(" ".join(process.cmdline()))
        except psutil.Error:
            continue
    return lines


def test_git_credentials_from_the_command_line_reach_the_background_daemon_and_no_command_line(
    plane: ControlPlane, clearml_conf: Path, repos: Repos, http_git: HttpGit, tmp_path: Path
) -> None:
    clearml_conf.write_text('agent { git_user: "mallory", git_pass: "Wrong-Secret-42" }\n')
    project = repos.create("project", {"run.py": WAITING_SCRIPT})
    serve(repos, project, http_git.root, "project.git")
    plane.create_queue("git")
    password = http_git.password
    started = run_cli(
        "agent",
        "daemon",
        "--queue",
        "git",
        "--detached",
        *FAST,
        "--git-user",
        "alice",
        "--git-pass",
        password,
    )
    assert started.code == 0, started.text
    warnings = [line for line in started.err.splitlines() if "visible to the other users" in line]
    assert warnings == [
        "warning: --git-pass on a command line is visible to the other users of this machine (ps, /proc); "
        "set CLEARML_AGENT_GIT_PASS in the environment instead"
    ]
    (record,) = run_records()
    log_path = Path(record.log or "")
    release = tmp_path / "release"
    try:
        task = plane.create_task(
            Task(
                name="git",
                script=Script(repository=http_git.url("project.git"), entry_point="run.py"),
                parameters=Parameters(argv=[str(release)]),
            )
        )
        plane.enqueue(task.id, "git")
        assert wait_for(lambda: "ready" in log_lines(plane, task.id), 60), log_path.read_text()
        lines = _command_lines(record.pid)
        assert len(lines) >= 2  # the daemon, the task's supervisor and process
        assert all(password not in line and "--git-pass" not in line for line in lines), lines
        release.touch()
        assert wait_for(lambda: plane.get_task(task.id).status == TaskStatus.COMPLETED, 30)
    finally:
        release.touch()
        stopped = run_cli("agent", "daemon", "--stop", "--queue", "git")
        if psutil.pid_exists(record.pid):
            os.kill(record.pid, signal.SIGKILL)
    assert stopped.code == 0, stopped.text
    # it cloned: the command line's user and password won over clearml.conf's wrong ones
    daemon_log = log_path.read_text()
    assert password not in daemon_log and "visible to the other users" not in daemon_log
    assert password not in json.dumps(plane.get_task(task.id).to_dict())
    assert password not in "\n".join(log_lines(plane, task.id))


def test_log_level_is_the_daemons_level_and_the_tasks_clearml_log_level(
    plane: ControlPlane, tasks: Tasks
) -> None:
    plane.create_queue("q")
    script = "import os\nprint('level', os.environ.get('CLEARML_LOG_LEVEL'))\n"
    quiet = tasks.create(script, queue="q")
    result = run_cli("agent", "daemon", "--queue", "q", "--stop-when-empty", *FAST, "--log-level", "warning")
    assert result.code == 0, result.text
    assert "listening to" not in result.err and "running task" not in result.err, result.err
    assert "level WARNING" in log_lines(plane, quiet.id)

    loud = tasks.create(script, queue="q")
    result = run_cli("agent", "daemon", "--queue", "q", "--stop-when-empty", *FAST)
    assert "listening to q" in result.err and "level None" in log_lines(plane, loud.id)

    bad = run_cli("agent", "daemon", "--queue", "q", "--log-level", "LOUD")
    assert bad.code == 2 and "--log-level 'LOUD' is not a level; use one of DEBUG, INFO" in bad.err


@pytest.mark.parametrize("command", ["daemon", "execute"])
def test_standalone_mode_installs_nothing_and_runs_the_agents_python(
    plane: ControlPlane, tasks: Tasks, command: str
) -> None:
    plane.create_queue("q")
    task = tasks.create(
        "import sys\nprint('python', sys.executable)\n",
        queue="q",
        requirements=Requirements(pip=["clearml-core-no-such-package==0.0.1"]),
    )
    if command == "daemon":
        result = run_cli("agent", "daemon", "--queue", "q", "--stop-when-empty", *FAST, "--standalone-mode")
    else:
        result = run_cli("agent", "execute", "--id", task.id, "--standalone-mode", "--quiet")
    assert result.code == 0, result.text
    record = plane.get_task(task.id)
    assert record.status == TaskStatus.COMPLETED, record.status_reason
    assert record.runtime["environment"]["source"] == "standalone"
    lines = log_lines(plane, task.id)
    assert f"python {sys.executable}" in lines
    assert any("standalone mode: the task runs with" in line for line in lines)


def test_stop_takes_worker_ids_or_queues(plane: ControlPlane, daemons: Daemons) -> None:
    for name in ("qa", "qb", "qc"):
        plane.create_queue(name)
    a, b, c = (
        daemons.start("--queue", queue, *FAST, env={"CLEARML_WORKER_ID": f"station-{queue}"})
        for queue in ("qa", "qb", "qc")
    )
    assert wait_for(lambda: len(run_records()) == 3, 30)

    by_worker = run_cli("agent", "daemon", "--stop", "station-qa")
    assert by_worker.code == 0 and "stopped daemon station-qa" in by_worker.out, by_worker.text
    assert a.wait(20) == 0 and b.poll() is None and c.poll() is None

    by_queue = run_cli("agent", "daemon", "--stop", "qb")
    assert by_queue.code == 0 and "stopped daemon station-qb" in by_queue.out, by_queue.text
    assert b.wait(20) == 0 and c.poll() is None

    unknown = run_cli("agent", "daemon", "--stop", "nope", "station-none")
    assert unknown.code == 2
    assert "no clearml-core daemon with worker id or queue nope, station-none" in unknown.err
    assert c.poll() is None

    legacy = run_cli("agent", "daemon", "--stop", "--queue", "qc")
    assert legacy.code == 0 and c.wait(20) == 0, legacy.text


def test_child_report_tags_go_with_the_worker_and_to_the_tasks(
    plane: ControlPlane, tasks: Tasks, daemons: Daemons
) -> None:
    plane.create_queue("q")
    daemons.start("--queue", "q", *FAST, "--child-report-tags", "gpu-box", "team a")
    assert wait_for(lambda: plane.list_workers(), 30)
    (worker,) = plane.list_workers()
    assert worker.info["tags"] == ["gpu-box", "team a"]
    task = tasks.create("import os\nprint('tags', os.environ['CLEARML_WORKER_TAGS'])\n", queue="q")
    assert wait_for(lambda: plane.get_task(task.id).status == TaskStatus.COMPLETED, 30)
    assert "tags gpu-box 'team a'" in log_lines(plane, task.id)


def test_use_owner_token_is_accepted_and_said_once_to_change_nothing(
    plane: ControlPlane, tasks: Tasks
) -> None:
    plane.create_queue("q")
    task = tasks.create("print('ran')", queue="q")
    result = run_cli("agent", "daemon", "--queue", "q", "--stop-when-empty", *FAST, "--use-owner-token")
    assert result.code == 0, result.text
    assert result.err.count("--use-owner-token has no effect on the control plane sqlite://") == 1, result.err
    assert "no task is handed its owner's credentials" in result.err
    assert plane.get_task(task.id).status == TaskStatus.COMPLETED


def test_optimisation_flags_run_the_tasks_python_with_o(plane: ControlPlane, tasks: Tasks) -> None:
    plane.create_queue("q")
    script = "import sys\nprint('optimize', sys.flags.optimize, 'docstrings', __doc__ is not None)\n"
    by_daemon = tasks.create('"""doc"""\n' + script, queue="q")
    result = run_cli("agent", "daemon", "--queue", "q", "--stop-when-empty", *FAST, "-O")
    assert result.code == 0, result.text
    assert "optimize 1 docstrings True" in log_lines(plane, by_daemon.id)
    by_execute = tasks.create('"""doc"""\n' + script)
    result = run_cli("agent", "execute", "--id", by_execute.id, "-OO", "--quiet")
    assert result.code == 0, result.text
    assert "optimize 2 docstrings False" in log_lines(plane, by_execute.id)
