"""``clearml-core task|queue|worker`` end to end, in subprocesses, on the default embedded plane."""

from __future__ import annotations

import json
import os
import queue as queue_module
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from clearml_core.controlplane import TaskStatus, open_control_plane
from tests.helpers import run_cli


@pytest.fixture
def project(tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "train.py").write_text("print('hi')\n", encoding="utf-8")
    return folder


def create(project: Path, *extra: str) -> str:
    result = run_cli(
        "task", "create", "--name", "train", "--folder", str(project), "--script", "train.py", *extra
    )
    assert result.code == 0, result.text
    task_id = result.out.strip()
    assert len(task_id) == 32
    return task_id


def as_json(*args: str) -> object:
    result = run_cli(*args, "--json")
    assert result.code == 0, result.text
    return json.loads(result.out)


def test_create_prints_the_id_and_stores_the_definition(project: Path, tmp_path: Path) -> None:
    requirements = tmp_path / "req.txt"
    requirements.write_text("numpy\n# comment\n", encoding="utf-8")
    task_id = create(
        project,
        "--project",
        "demo",
        "--args",
        "--lr 0.1",
        "--args",
        "--name 'two words'",
        "--requirements",
        str(requirements),
        "--packages",
        "pandas rich>=13",
        "--docker",
        "python:3.12",
        "--docker-args",
        "--ipc=host -e X=1",
        "--output-uri",
        "file:///tmp/out",
        "--timeout",
        "60",
        "--env",
        "A=1",
        "--env",
        "B=x=y",
    )
    task = open_control_plane().get_task(task_id)
    assert (task.name, task.project, task.status) == ("train", "demo", TaskStatus.CREATED)
    assert task.parameters.argv == ["--lr", "0.1", "--name", "two words"]
    assert task.parameters.env == {"A": "1", "B": "x=y"}
    assert task.requirements.pip == ["numpy", "pandas", "rich>=13"]
    assert (task.container.image, task.container.arguments) == ("python:3.12", ["--ipc=host", "-e", "X=1"])
    assert (task.output_uri, task.timeout) == ("file:///tmp/out", 60)
    assert (task.script.folder, task.script.entry_point) == (str(project.resolve()), "train.py")


def test_create_from_a_repository() -> None:
    result = run_cli(
        "task", "create", "--name", "r", "--repo", "https://github.com/org/repo.git", "--branch", "dev",
        "--commit", "abc", "--script", "src/main.py", "--json",
    )  # fmt: skip
    assert result.code == 0, result.text
    shown = json.loads(result.out)
    assert shown["script"]["repository"] == "https://github.com/org/repo.git"
    assert (shown["script"]["branch"], shown["script"]["commit"]) == ("dev", "abc")
    assert shown["script"]["entry_point"] == "src/main.py"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--script", "train.py"], "exactly one"),
        (["--folder", "{project}", "--repo", "https://h/r.git", "--script", "train.py"], "exactly one"),
        (["--folder", "{project}", "--script", "missing.py"], "missing.py"),
        (["--folder", "{project}", "--script", "train.py", "--env", "NOPE"], "NAME=VALUE"),
        (["--folder", "{project}", "--script", "train.py", "--queue", "nowhere"], "queue create nowhere"),
        (["--repo", "{project}", "--script", "train.py"], "not inside a git working copy"),
    ],
)
def test_create_mistakes_are_one_line_errors(project: Path, args: list[str], message: str) -> None:
    args = [arg.replace("{project}", str(project)) for arg in args]
    result = run_cli("task", "create", "--name", "x", *args)
    assert result.code == 2, result.text
    assert message in result.err
    assert len(result.err.strip().splitlines()) == 1
    assert "Traceback" not in result.err
    assert open_control_plane().list_tasks() == []


def test_list_and_show(project: Path) -> None:
    first = create(project, "--queue", "default")
    second = create(project, "--project", "other")
    listed = run_cli("task", "list")
    assert listed.code == 0
    assert first in listed.out and second in listed.out
    assert "queued" in listed.out
    rows = as_json("task", "list", "--status", "queued")
    assert [row["id"] for row in rows] == [first]
    assert [row["id"] for row in as_json("task", "list", "--project", "other")] == [second]
    assert [row["id"] for row in as_json("task", "list", "--queue", "default")] == [first]
    shown = run_cli("task", "show", first)
    assert shown.code == 0
    assert "status:" in shown.out and "queued" in shown.out and "train.py" in shown.out
    assert as_json("task", "show", second)["project"] == "other"


def test_show_masks_secret_env_values(project: Path) -> None:
    task_id = create(project, "--env", "API_TOKEN=tok-abcdef123", "--env", "VISIBLE=plain-value")
    for args in (("task", "show", task_id), ("task", "show", task_id, "--json"), ("task", "list", "--json")):
        result = run_cli(*args)
        assert result.code == 0
        assert "tok-abcdef123" not in result.out
        assert "plain-value" in result.out
    assert open_control_plane().get_task(task_id).parameters.env["API_TOKEN"] == "tok-abcdef123"


def test_unknown_task(project: Path) -> None:
    for command in ("show", "logs", "abort", "enqueue", "dequeue", "clone", "reset", "delete"):
        result = run_cli("task", command, "0" * 32)
        assert result.code == 2, (command, result.text)
        assert (
            result.err.strip()
            == f"error: no task with id {'0' * 32!r}; `clearml-core task list` shows the tasks"
        )


def test_lifecycle(project: Path) -> None:
    task_id = create(project)
    assert run_cli("queue", "create", "gpu").code == 0
    assert as_json("task", "enqueue", task_id, "--queue", "gpu")["status"] == "queued"
    twice = run_cli("task", "enqueue", task_id)
    assert twice.code == 2
    assert "queued" in twice.err
    assert as_json("task", "dequeue", task_id)["status"] == "created"
    clone = run_cli("task", "clone", task_id, "--name", "copy", "--queue", "gpu")
    assert clone.code == 0
    clone_id = clone.out.strip()
    copy = as_json("task", "show", clone_id)
    assert (copy["name"], copy["parent"], copy["status"]) == ("copy", task_id, "queued")
    aborted = run_cli("task", "abort", clone_id)
    assert aborted.code == 0
    assert "stopped" in aborted.out
    refused = run_cli("task", "enqueue", clone_id)
    assert refused.code == 2
    assert f"task reset {clone_id}" in refused.err
    assert as_json("task", "reset", clone_id)["status"] == "created"
    assert run_cli("task", "delete", clone_id).code == 0
    assert [row["id"] for row in as_json("task", "list")] == [task_id]


def test_abort_of_a_running_task(project: Path) -> None:
    task_id = create(project, "--queue", "default")
    plane = open_control_plane()
    plane.pop(["default"], "host:1")
    result = run_cli("task", "abort", task_id)
    assert result.code == 0
    assert "abort requested" in result.out
    assert plane.abort_requested(task_id)
    assert run_cli("task", "delete", task_id).code == 2
    assert as_json("task", "abort", task_id, "--force")["status"] == "stopped"


def test_logs(project: Path) -> None:
    task_id = create(project)
    plane = open_control_plane()
    plane.start(task_id, "host:1")
    plane.append_logs(task_id, ["hello", "world"])
    plane.append_logs(task_id, ["oops"], stream="stderr")
    result = run_cli("task", "logs", task_id)
    assert result.code == 0
    assert result.out.splitlines() == ["hello", "world", "oops"]
    events = [json.loads(line) for line in run_cli("task", "logs", task_id, "--json").out.splitlines()]
    assert [(e["seq"], e["stream"], e["lines"]) for e in events] == [
        (1, "stdout", ["hello", "world"]),
        (2, "stderr", ["oops"]),
    ]
    assert run_cli("task", "logs", task_id, "--since", "1").out.splitlines() == ["oops"]


def test_logs_follow_prints_new_lines_and_ends_with_the_task(project: Path) -> None:
    task_id = create(project)
    plane = open_control_plane()
    plane.start(task_id, "host:1")
    plane.append_logs(task_id, ["first"])
    follower = subprocess.Popen(
        [sys.executable, "-m", "clearml_core.cli.main", "task", "logs", task_id, "--follow"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ),
    )
    lines: queue_module.Queue[str] = queue_module.Queue()
    assert follower.stdout is not None
    reader = threading.Thread(
        target=lambda: [lines.put(line.rstrip("\n")) for line in follower.stdout], daemon=True
    )
    reader.start()
    try:
        assert lines.get(timeout=30) == "first"
        plane.append_logs(task_id, ["second"])
        assert lines.get(timeout=30) == "second"  # shown while the task still runs
        assert follower.poll() is None
        plane.append_logs(task_id, ["third"])
        plane.set_status(task_id, TaskStatus.COMPLETED, exit_code=0)
        assert follower.wait(timeout=30) == 0
        reader.join(10)
        assert lines.get(timeout=1) == "third"
        assert lines.empty()
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.wait()


def test_queue_commands(project: Path) -> None:
    created = as_json("queue", "create", "gpu", "--tag", "force_workers:on")
    assert (created["name"], created["tags"]) == ("gpu", ["force_workers:on"])
    again = run_cli("queue", "create", "gpu")
    assert again.code == 2
    assert "exists already" in again.err
    assert run_cli("queue", "create", "gpu", "--exist-ok").code == 0
    task_id = create(project, "--queue", "gpu")
    queues = {q["name"]: q for q in as_json("queue", "list")}
    assert set(queues) == {"default", "gpu"}
    assert queues["gpu"]["tasks"] == [task_id]
    listed = run_cli("queue", "list")
    assert "gpu" in listed.out and task_id in listed.out
    assert as_json("queue", "tag", "gpu", "big", "--remove", "force_workers:on")["tags"] == ["big"]
    assert "big" in run_cli("queue", "tag", "gpu").out
    refused = run_cli("queue", "delete", "gpu")
    assert refused.code == 2
    assert "--force" in refused.err
    assert run_cli("queue", "delete", "gpu", "--force").code == 0
    assert as_json("task", "show", task_id)["status"] == "created"
    missing = run_cli("queue", "delete", "gpu")
    assert missing.code == 2
    assert "no queue named 'gpu'" in missing.err


def test_worker_commands() -> None:
    assert as_json("worker", "list") == []
    plane = open_control_plane()
    plane.register_worker("host:42", queues=["default"])
    plane.heartbeat("host:42", machine_stats={"cpu_usage": [3.0]})
    listed = run_cli("worker", "list")
    assert listed.code == 0
    assert "host:42" in listed.out and "default" in listed.out
    [worker] = as_json("worker", "list")
    assert (worker["id"], worker["machine_stats"]) == ("host:42", {"cpu_usage": [3.0]})
    changed = as_json("worker", "set-runtime", "host:42", "force=on", "--expiry", "3600")
    assert changed["runtime_properties"]["force"]["value"] == "on"
    assert changed["runtime_properties"]["force"]["expires"] > plane.clock()
    assert plane.get_worker("host:42").runtime_value("force") == "on"
    assert "force=on" in run_cli("worker", "list").out
    assert run_cli("worker", "set-runtime", "host:42", "force=").code == 0
    assert plane.get_worker("host:42").runtime_value("force") is None
    bad = run_cli("worker", "set-runtime", "host:42", "force=maybe")
    assert bad.code == 2
    assert "on or off" in bad.err
    unknown = run_cli("worker", "set-runtime", "nobody", "force=on")
    assert unknown.code == 2
    assert "no worker" in unknown.err


def test_help_imports_no_control_plane() -> None:
    code = (
        "import sys\n"
        "from clearml_core.cli.main import app\n"
        "heavy = [m for m in ('clearml_core.controlplane', 'clearml_core.tasks') if m in sys.modules]\n"
        "print(heavy)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
    for group in ("task", "queue", "worker"):
        assert run_cli(group, "--help").code == 0
