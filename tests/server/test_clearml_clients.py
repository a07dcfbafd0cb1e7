"""ClearML's own clients against the server (slow): the real ``clearml`` SDK and ``clearml-agent``,
installed in side environments, never in the project's.

The SDK creates a task and enqueues it; ``clearml-agent daemon`` (venv mode, foreground, its own
clearml.conf) pulls it, builds a virtual environment with pip from the machine's package index,
runs it and reports it completed; its console output is then read back through the API. The
task's requirements are empty, and it does not import clearml, so the environment stays tiny.
clearml-core's own daemon does the same through the API with the ClearML control plane
(``clearml-core[clearml]``), selected by nothing but the same clearml.conf.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from clearml_core.testing.clearml_server import ApiClient, ClearMLServer, run_clearml_server
from clearml_core.testing.servers import stop_process
from tests.clearml_side import clearml_env, run_clearml

pytestmark = pytest.mark.slow

CREATE_AND_ENQUEUE = r"""
import sys
from clearml import Task
task = Task.create(
    project_name="server tests", task_name="hello", script=sys.argv[1], packages=[], add_task_init_call=False
)
Task.enqueue(task, queue_name="default")
print(task.id)
"""

TASK_SCRIPT = 'print("hello from the task", 6 * 7)\n'


def sdk_env(server: ClearMLServer, home: Path) -> dict[str, str]:
    env = clearml_env(home, server.clearml_conf())
    env.pop("CLEARML_OFFLINE_MODE")
    return env


def wait_for_status(api: ApiClient, task_id: str, wanted: set[str], timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        task = api.call("tasks.get_by_id", {"task": task_id}).data["task"]
        if task["status"] in wanted or time.monotonic() > deadline:
            return task
        time.sleep(0.5)


def log_text(api: ApiClient, task_id: str) -> str:
    events = api.call("events.get_task_log", {"task": task_id, "order": "asc", "batch_size": 10000}).data[
        "events"
    ]
    return "\n".join(event["msg"] for event in events)


def enqueue_hello(server: ClearMLServer, clearml_python: Path, tmp_path: Path) -> str:
    """The SDK creates a task of :data:`TASK_SCRIPT` and enqueues it in ``default``; its id.

    The script file is gone afterwards: an agent runs what the task recorded."""
    script = tmp_path / "hello_task.py"
    script.write_text(TASK_SCRIPT)
    task_id = run_clearml(
        clearml_python, CREATE_AND_ENQUEUE, str(script), env=sdk_env(server, tmp_path / "sdk")
    )
    script.unlink()
    return task_id.strip()


@pytest.fixture
def agent(
    clearml_server: ClearMLServer, clearml_agent_python: Path, tmp_path: Path
) -> Iterator[subprocess.Popen]:
    """``clearml-agent daemon --queue default --foreground`` against the server, stopped by its PID."""
    home = tmp_path / "agent-home"
    conf = clearml_server.clearml_conf(
        "agent {\n"
        '  worker_id: "server-test:cpu"\n'
        f'  venvs_dir: "{home}/venvs"\n'
        f'  vcs_cache.path: "{home}/vcs"\n'
        f'  pip_download_cache.path: "{home}/pip"\n'
        "  package_manager { type: pip }\n"
        "}\n"
    )
    env = clearml_env(home, conf)
    env.pop("CLEARML_OFFLINE_MODE")
    log = (tmp_path / "agent.log").open("wb")
    process = subprocess.Popen(
        [
            str(clearml_agent_python.parent / "clearml-agent"),
            "daemon",
            "--queue",
            "default",
            "--foreground",
            "--cpu-only",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=home,
    )
    yield process
    stop_process(process, timeout=30)
    log.close()


def test_the_sdk_creates_a_task_and_clearml_agent_runs_it_to_completed(
    clearml_server: ClearMLServer,
    clearml_python: Path,
    api: ApiClient,
    agent: subprocess.Popen,
    tmp_path: Path,
) -> None:
    task_id = enqueue_hello(clearml_server, clearml_python, tmp_path)

    task = wait_for_status(api, task_id, {"completed", "failed", "stopped"}, timeout=300)

    log = log_text(api, task_id)
    assert task["status"] == "completed", f"{task['status']}: {task['status_reason']}\n{log[-3000:]}"
    assert "hello from the task 42" in log
    assert task["project"] and task["name"] == "hello"
    assert task["last_worker"] == "server-test:cpu"
    workers = api.call("workers.get_all").data["workers"]
    assert [w["id"] for w in workers] == ["server-test:cpu"]


def test_the_sdk_enqueues_a_task_and_clearml_cores_daemon_runs_it_through_the_api(
    clearml_server: ClearMLServer, clearml_python: Path, api: ApiClient, tmp_path: Path
) -> None:
    import psutil

    task_id = enqueue_hello(clearml_server, clearml_python, tmp_path)

    home = tmp_path / "core-agent"
    home.mkdir()
    conf = home / "clearml.conf"
    conf.write_text(clearml_server.clearml_conf('agent.worker_id: "core-test:cpu"\n'))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLEARML", "TRAINS"))}
    env.update(HOME=str(home), CLEARML_CONFIG_FILE=str(conf))
    log = tmp_path / "core-agent.log"
    with log.open("wb") as out:
        daemon = subprocess.Popen(
            [sys.executable, "-m", "clearml_core.cli.main", "agent", "daemon", "--queue", "default"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        task = wait_for_status(api, task_id, {"completed", "failed", "stopped"}, timeout=300)
        command_lines = [
            " ".join(p.cmdline())
            for p in [psutil.Process(daemon.pid), *psutil.Process(daemon.pid).children(recursive=True)]
        ]
    finally:
        stop_process(daemon, timeout=30)

    output = log.read_text(errors="replace")
    text = log_text(api, task_id)
    assert task["status"] == "completed", (
        f"{task['status']}: {task['status_reason']}\n{text[-3000:]}\n{output[-3000:]}"
    )
    assert "hello from the task 42" in text
    assert task["last_worker"] == "core-test:cpu"
    assert f"control plane clearml+{clearml_server.api_url} (from api.api_server, {conf}:2)" in output, output
    for secret in (clearml_server.secret_key,):
        assert secret not in output and not any(secret in line for line in command_lines)


TASK_INIT = r"""
from clearml import Task
task = Task.init(project_name="server tests", task_name="local run", auto_connect_frameworks=False,
                 auto_resource_monitoring=False)
task.connect({"learning_rate": 0.25}, name="General")
print("printed while running", task.id)
task.close()
print(task.id)
"""


def test_task_init_records_a_local_run(
    clearml_server: ClearMLServer, clearml_python: Path, api: ApiClient, tmp_path: Path
) -> None:
    output = run_clearml(clearml_python, TASK_INIT, env=sdk_env(clearml_server, tmp_path / "sdk"))
    task_id = output.strip().splitlines()[-1]

    task = api.call("tasks.get_by_id", {"task": task_id}).data["task"]

    assert task["status"] in ("completed", "stopped"), task["status"]
    assert task["hyperparams"]["General"]["learning_rate"]["value"] == "0.25"
    assert f"printed while running {task_id}" in log_text(api, task_id)


UPLOAD_ARTIFACT = r"""
import sys
from clearml import Task
task = Task.create(project_name="server tests", task_name="with an artifact", add_task_init_call=False)
task.upload_artifact("weights", artifact_object=sys.argv[1], wait_on_upload=True)
task.reload()
print(task.artifacts["weights"].url)
"""


FIXED_USERS = 'auth.fixed_users { enabled: true, users: [{username: "jane", password: "a long password", name: "Jane"}] }'


@pytest.fixture(params=["open", "fixed users"])
def any_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ClearMLServer]:
    """A server without and with fixed users (then the file server wants the SDK's session token)."""
    config = {"apiserver.conf": FIXED_USERS} if request.param == "fixed users" else {}
    with run_clearml_server(tmp_path / "server", config=config) as server:
        yield server


def test_an_artifact_the_sdk_uploads_is_downloaded_by_clearml_cores_storage_manager(
    any_server: ClearMLServer, clearml_python: Path, clearml_conf: Path, tmp_path: Path
) -> None:
    from clearml_core import StorageManager
    from clearml_core.settings import reset_config

    clearml_server = any_server
    weights = tmp_path / "weights.bin"
    weights.write_bytes(bytes(range(256)) * 512)
    url = run_clearml(
        clearml_python, UPLOAD_ARTIFACT, str(weights), env=sdk_env(clearml_server, tmp_path / "sdk")
    )
    url = url.strip().splitlines()[-1]
    assert url.startswith(clearml_server.files_url + "/")
    assert any(
        p.read_bytes() == weights.read_bytes() for p in clearml_server.upload_folder.rglob("*") if p.is_file()
    )

    clearml_conf.write_text(clearml_server.clearml_conf())
    reset_config()
    local = StorageManager.get_local_copy(url)

    assert local is not None and Path(local).read_bytes() == weights.read_bytes()


def test_wrong_credentials_are_one_clear_line_in_the_sdk_and_the_agent(
    clearml_server: ClearMLServer, clearml_python: Path, clearml_agent_python: Path, tmp_path: Path
) -> None:
    from dataclasses import replace

    wrong = replace(clearml_server, secret_key="not-the-secret")
    env = sdk_env(wrong, tmp_path / "sdk")
    done = subprocess.run(
        [str(clearml_python), "-c", "from clearml import Task; Task.create(project_name='p', task_name='x')"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    expected = (
        f"Failed getting token (error 401 from {clearml_server.api_url}): Unauthorized (invalid credentials)"
    )
    assert done.returncode != 0
    assert expected in done.stderr.strip().splitlines()[-1]

    agent = subprocess.run(
        [str(clearml_agent_python.parent / "clearml-agent"), "daemon", "--queue", "default", "--foreground"],
        capture_output=True,
        text=True,
        env=sdk_env(wrong, tmp_path / "agent"),
        timeout=120,
        check=False,
    )
    assert agent.returncode != 0
    errors = [line for line in (agent.stdout + agent.stderr).splitlines() if "ERROR" in line]
    assert len(errors) == 1 and expected in errors[0]
