"""A task's container as the engine sees it while it runs: GPUs, variables, network, mounts, labels,
its name, and no secret anywhere in it (``docker inspect``), in any command line or in the log."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import psutil
import pytest

from clearml_core.controlplane import ControlPlane, TaskStatus
from tests.agent.conftest import Daemons, Tasks, log_lines
from tests.helpers import run_cli, wait_for

from .conftest import LABEL, DockerSetup

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

GIT_PASS = "gitpass-s3cr3t-1234"
TOKEN = "tok-s3cr3t-5678"
URL_PASS = "urlpass-s3cr3t-9012"
SECRETS = (GIT_PASS, TOKEN, URL_PASS)

WAITING = """
import hashlib, os, pathlib, time
print("gpus", os.environ.get("NVIDIA_VISIBLE_DEVICES"))
print("token", hashlib.sha256(os.environ.get("MY_TOKEN", "").encode()).hexdigest())
print("ssh", sorted(p.name for p in pathlib.Path("~/.ssh").expanduser().glob("*")))
release = pathlib.Path(os.environ["CLEARML_OUTPUT_DIR"]).parent / "release"
print("waiting", flush=True)
deadline = time.monotonic() + 120
while not release.exists() and time.monotonic() < deadline:
    time.sleep(0.05)
"""


def running_container(client: Any, task_id: str) -> Any:
    found = wait_for(lambda: client.containers.list(filters={"label": f"{LABEL}={task_id}"}))
    assert found, f"no running container for task {task_id}"
    return found[0]


def assert_out_of_sight(secrets: tuple[str, ...], attrs: dict[str, Any]) -> None:
    """None of ``secrets`` in the container's inspect output or on any command line here."""
    inspected = json.dumps(attrs)
    for secret in secrets:
        assert secret not in inspected
    for process in psutil.process_iter(["cmdline"]):
        command = " ".join(process.info["cmdline"] or [])
        assert not any(secret in command for secret in secrets), command


def release(home: Path, task_id: str) -> None:
    (home / ".clearml-core" / "tasks" / task_id / "release").touch()


def test_a_running_task_container_as_the_engine_sees_it(
    docker: DockerSetup, plane: ControlPlane, tasks: Tasks, daemons: Daemons, clearml_home: Path
) -> None:
    (clearml_home / ".ssh").mkdir()
    (clearml_home / ".ssh" / "id_test").write_text("not a real key\n")
    docker.configure(
        {
            "agent.git_pass": GIT_PASS,
            "agent.extra_docker_arguments": [
                "-e",
                f"MY_TOKEN={TOKEN}",
                "-e",
                f"DATA_URL=https://user:{URL_PASS}@example.com/data",
                "--label",
                "team=vision",
            ],
            "agent.docker_container_name_format": "clearml-{task_id}-{project}",
            "agent.docker_container_name_format_fields": {"project": "project"},
        }
    )
    plane.create_queue("q")
    task = tasks.create(WAITING, queue="q", project="demo")
    daemon = daemons.start(
        "--queue",
        "q",
        "--docker",
        docker.image,
        "--gpus",
        "0,1",
        "--polling-interval",
        "0.1",
        "--stop-when-empty",
    )
    assert wait_for(lambda: "waiting" in log_lines(plane, task.id)), log_lines(plane, task.id)
    container = running_container(docker.client, task.id)
    attrs = container.attrs
    try:
        assert container.name == f"clearml-{task.id}-demo"
        requests = attrs["HostConfig"]["DeviceRequests"]
        assert [(r["DeviceIDs"], r["Capabilities"]) for r in requests] == [(["0", "1"], [["gpu"]])]
        assert attrs["HostConfig"]["NetworkMode"] == "host"  # the control plane is this machine's
        env = dict(item.split("=", 1) for item in attrs["Config"]["Env"])
        assert env["CLEARML_TASK_ID"] == task.id
        assert env["CLEARML_DOCKER_IMAGE"] == docker.image
        assert env["CLEARML_WORKER_ID"].endswith(":gpu0,1")
        labels = attrs["Config"]["Labels"]
        assert labels[LABEL] == task.id and labels["team"] == "vision"
        assert labels["clearml-core.agent-pid"] == str(daemon.pid)
        targets = {mount["Destination"]: mount for mount in attrs["Mounts"]}
        state = str(clearml_home / ".clearml-core")
        assert state in targets  # the embedded control plane's folder, at its own path
        for inside in (
            "/clearml-core/run",
            "/clearml-core/wheelhouse",
            "/clearml-core/agents",
            "/root/.clearml/vcs-cache",
            "/root/.clearml/venvs-cache-clearml-core",
            "/root/.clearml/pip-download-cache",
            "/root/.cache/pip",
            "/var/cache/apt/archives",
            "/clearml_agent_cache",
            "/.ssh",
        ):
            assert inside in targets, (inside, sorted(targets))
        assert targets["/clearml-core/wheelhouse"]["RW"] is False
        assert_out_of_sight(SECRETS, attrs)
    finally:
        release(clearml_home, task.id)
    assert daemon.wait(120) == 0, daemons.output()
    record = plane.get_task(task.id)
    lines = log_lines(plane, task.id)
    assert record.status == TaskStatus.COMPLETED, (record.status_reason, lines)
    assert "gpus 0,1" in lines  # set by the engine's GPU driver from the request
    assert f"token {hashlib.sha256(TOKEN.encode()).hexdigest()}" in lines  # -e reached the task
    assert "ssh ['id_test']" in lines  # the copy of ~/.ssh
    text = "\n".join(lines) + json.dumps(record.to_dict()) + daemons.output()
    for secret in SECRETS:
        assert secret not in text
    assert "DATA_URL=https://user:********@example.com/data" in text  # how the arguments are logged
    assert "MY_TOKEN=********" in text
    assert not (clearml_home / ".clearml-core" / "tasks" / task.id / ".container").exists()


def test_cpu_only_asks_for_no_gpu_and_ssh_stays_home_when_told(
    docker: DockerSetup, plane: ControlPlane, tasks: Tasks, clearml_home: Path
) -> None:
    (clearml_home / ".ssh").mkdir()
    (clearml_home / ".ssh" / "id_test").write_text("not a real key\n")
    docker.configure({"agent.disable_ssh_mount": True})
    task = tasks.create(WAITING.replace('print("waiting", flush=True)', "release.touch()"))
    result = run_cli("agent", "execute", "--id", task.id, "--docker", docker.image, "--cpu-only", timeout=300)
    assert result.code == 0, result.text
    lines = log_lines(plane, task.id)
    assert "gpus none" in lines and "ssh []" in lines, lines
    assert os.environ.get("DOCKER_HOST") == docker.url
