"""The Python task API: building task definitions, logs that follow a run, showing tasks."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from clearml_core import tasks
from clearml_core.controlplane import (
    DEFAULT_QUEUE,
    ControlPlane,
    QueueNotFoundError,
    TaskNotFoundError,
    TaskStatus,
)
from clearml_core.controlplane.sqlite import SQLiteControlPlane
from clearml_core.errors import NotFoundError, UserError


@pytest.fixture
def plane(tmp_path: Path) -> ControlPlane:
    return SQLiteControlPlane(tmp_path / "state.db")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    (folder / "src").mkdir(parents=True)
    (folder / "src" / "train.py").write_text("print('hi')\n", encoding="utf-8")
    return folder


def test_folder_task(plane: ControlPlane, project: Path) -> None:
    task = tasks.create_task(
        "train",
        folder=project,
        script="src/train.py",
        args=["--lr", "0.1"],
        env={"A": "1"},
        requirements=["numpy"],
        docker_image="python:3.12",
        docker_args=["--ipc=host"],
        output_uri="file:///tmp/out",
        timeout=30,
        plane=plane,
    )
    stored = plane.get_task(task.id)
    assert stored.status == TaskStatus.CREATED
    assert (stored.script.folder, stored.script.entry_point) == (str(project), "src/train.py")
    assert stored.script.source == "folder"
    assert stored.parameters.argv == ["--lr", "0.1"]
    assert stored.parameters.env == {"A": "1"}
    assert stored.requirements.pip == ["numpy"]
    assert (stored.container.image, stored.container.arguments) == ("python:3.12", ["--ipc=host"])
    assert (stored.output_uri, stored.timeout) == ("file:///tmp/out", 30)


def test_folder_script_paths(project: Path) -> None:
    absolute = tasks.folder_script(project, str(project / "src" / "train.py"))
    assert absolute.entry_point == "src/train.py"
    with pytest.raises(NotFoundError, match="missing.py"):
        tasks.folder_script(project, "missing.py")
    with pytest.raises(UserError, match="not inside"):
        tasks.folder_script(project / "src", str(project / "elsewhere.py"))
    with pytest.raises(NotFoundError, match="does not exist"):
        tasks.folder_script(project / "nope", "train.py")


def test_repository_task(plane: ControlPlane, tmp_path: Path) -> None:
    for url in (
        "https://github.com/org/repo.git",
        "ssh://git@github.com/org/repo.git",
        "git@github.com:org/repo.git",
        "file:///srv/git/repo",
    ):
        task = tasks.create_task("r", repo=url, branch="main", commit="abc123", script="a/b.py", plane=plane)
        assert (task.script.repository, task.script.branch, task.script.commit) == (url, "main", "abc123")
        assert (task.script.entry_point, task.script.source) == ("a/b.py", "git")
    with pytest.raises(UserError, match="not inside a git working copy"):
        tasks.create_task("r", repo=str(tmp_path), script="a.py", plane=plane)


def test_one_source_exactly(plane: ControlPlane, project: Path) -> None:
    with pytest.raises(UserError, match="exactly one"):
        tasks.create_task("x", script="a.py", plane=plane)
    with pytest.raises(UserError, match="exactly one"):
        tasks.create_task("x", repo="https://h/r.git", folder=project, script="a.py", plane=plane)
    with pytest.raises(UserError, match="timeout"):
        tasks.create_task("x", folder=project, script="src/train.py", timeout=0, plane=plane)
    assert plane.list_tasks() == []


def test_requirements_file_and_packages(plane: ControlPlane, project: Path, tmp_path: Path) -> None:
    file = tmp_path / "requirements.txt"
    file.write_text("# pinned\nnumpy==1.26.0  # math\n\n-r other.txt\npandas\n", encoding="utf-8")
    task = tasks.create_task(
        "x", folder=project, script="src/train.py", requirements_file=file, requirements=["rich"], plane=plane
    )
    assert task.requirements.pip == ["numpy==1.26.0", "-r other.txt", "pandas", "rich"]
    with pytest.raises(NotFoundError, match="requirements file"):
        tasks.read_requirements_file(tmp_path / "missing.txt")


def test_create_with_a_queue(plane: ControlPlane, project: Path) -> None:
    task = tasks.create_task("x", folder=project, script="src/train.py", queue=DEFAULT_QUEUE, plane=plane)
    assert task.status == TaskStatus.QUEUED
    assert plane.get_queue(DEFAULT_QUEUE).tasks == [task.id]
    with pytest.raises(QueueNotFoundError):
        tasks.create_task("y", folder=project, script="src/train.py", queue="nowhere", plane=plane)
    assert [t.name for t in plane.list_tasks()] == ["x"]  # no orphan left behind


def test_parse_env() -> None:
    assert tasks.parse_env(["A=1", "B=x=y", "EMPTY="]) == {"A": "1", "B": "x=y", "EMPTY": ""}
    for bad in ("NOVALUE", "=1", "1A=2", "A B=1"):
        with pytest.raises(UserError, match="NAME=VALUE"):
            tasks.parse_env([bad])


def test_manage(plane: ControlPlane, project: Path) -> None:
    task = tasks.create_task("x", folder=project, script="src/train.py", plane=plane)
    plane.create_queue("gpu")
    assert tasks.enqueue_task(task.id, "gpu", plane=plane).queue == "gpu"
    assert tasks.dequeue_task(task.id, plane=plane).status == TaskStatus.CREATED
    copy = tasks.clone_task(task.id, queue="gpu", plane=plane)
    assert (copy.status, copy.parent) == (TaskStatus.QUEUED, task.id)
    assert tasks.abort_task(copy.id, plane=plane).status == TaskStatus.STOPPED
    assert tasks.reset_task(copy.id, plane=plane).status == TaskStatus.CREATED
    tasks.delete_task(copy.id, plane=plane)
    assert [t.id for t in tasks.list_tasks(plane=plane)] == [task.id]
    assert tasks.get_task(task.id, plane=plane).name == "x"


def test_follow_logs_until_the_task_ends(plane: ControlPlane) -> None:
    task = plane.create_task(tasks.Task(name="x"))
    plane.start(task.id, "w1")
    plane.append_logs(task.id, ["before"])
    seen: list[str] = []
    followed = threading.Event()

    def follow() -> None:
        for event in tasks.follow_logs(task.id, plane=plane, poll_interval=0.01):
            seen.extend(event.lines)
            if "before" in seen:
                followed.set()

    reader = threading.Thread(target=follow)
    reader.start()
    assert followed.wait(30)
    plane.append_logs(task.id, ["during 1", "during 2"], stream="stderr")
    plane.append_logs(task.id, ["last"])
    plane.set_status(task.id, TaskStatus.COMPLETED, exit_code=0)
    reader.join(30)
    assert not reader.is_alive()
    assert seen == ["before", "during 1", "during 2", "last"]


def test_follow_logs_of_an_unknown_task(plane: ControlPlane) -> None:
    with pytest.raises(TaskNotFoundError):
        list(tasks.follow_logs("nope", plane=plane))


def test_task_view_masks_secrets_but_the_record_keeps_them(plane: ControlPlane, project: Path) -> None:
    env = {
        "API_TOKEN": "tok-123456",
        "DB_PASSWORD": "hunter2hunter2",
        "AWS_ACCESS_KEY_ID": "AKIAABCDEFGHWXYZ",
        "MY_SERVICE_KEY": "k-98765",
        "PLAIN": "visible",
        "URL": "https://user:pw123456@host/x",
    }
    task = tasks.create_task("x", folder=project, script="src/train.py", env=env, plane=plane)
    assert plane.get_task(task.id).parameters.env == env
    shown = tasks.task_view(task)["parameters"]["env"]
    assert shown["API_TOKEN"] == "****"
    assert shown["DB_PASSWORD"] == "****"
    assert shown["AWS_ACCESS_KEY_ID"] == "****WXYZ"
    assert shown["MY_SERVICE_KEY"] == "****"
    assert shown["PLAIN"] == "visible"
    assert "pw123456" not in shown["URL"]


def test_nothing_is_captured_from_the_environment(
    plane: ControlPlane, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "do-not-store-me")
    task = tasks.create_task("x", folder=project, script="src/train.py", plane=plane)
    assert "do-not-store-me" not in str(plane.get_task(task.id).to_dict())
