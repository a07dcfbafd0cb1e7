"""Poetry tasks through the agent: the daemon, which manager a task gets, failures, the missing plugin."""

from __future__ import annotations

from pathlib import Path

import pytest

from clearml_core.agent.execute import execute_task
from clearml_core.config import Config
from clearml_core.controlplane import ControlPlane, Requirements, Script, Task, TaskStatus
from clearml_core.environments.cache import EnvironmentCache
from clearml_core.plugins import reset_registry
from plugins.pkgmgr_poetry.tests import support
from tests.agent.conftest import Daemons, log_lines
from tests.environments.conftest import ConfigFactory

POETRY = {"agent.package_manager.type": "poetry"}


def folder_task(
    plane: ControlPlane, code: Path, *, pip: list[str] | None = None, working_dir: str = ""
) -> Task:
    script = Script(folder=str(code), entry_point="main.py", working_dir=working_dir)
    return plane.create_task(Task(name="poetry", script=script, requirements=Requirements(pip=pip or [])))


def run(plane: ControlPlane, task: Task, config: Config) -> Task:
    running = plane.start(task.id, "tester")
    execute_task(plane, running, config=config, worker_id="tester")
    return plane.get_task(task.id)


def test_the_daemon_runs_poetry_tasks_and_fails_bad_locks_with_one_reason_each(
    plane: ControlPlane,
    daemons: Daemons,
    plain_project: Path,
    env_config: ConfigFactory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = env_config(POETRY)
    monkeypatch.setenv("CLEARML_CONFIG_FILE", str(config.files[0]))
    good = support.copy_project(plain_project, tmp_path / "good")
    stale = support.copy_project(plain_project, tmp_path / "stale")
    pyproject = (stale / "pyproject.toml").read_text()
    (stale / "pyproject.toml").write_text(pyproject.replace('"six>=1.16"', '"six>=1.16", "idna"'))
    broken = support.copy_project(plain_project, tmp_path / "broken")
    (broken / "poetry.lock").write_text("[[package]\nname = 'six'\n")
    again = support.copy_project(plain_project, tmp_path / "again")
    plane.create_queue("poetryq")
    tasks = [folder_task(plane, code) for code in (good, stale, broken, again)]
    for task in tasks:
        plane.enqueue(task.id, "poetryq")
    daemon = daemons.start("--queue", "poetryq", "--stop-when-empty")
    assert daemon.wait(600) == 0, daemons.output()
    first, stale_task, broken_task, second = (plane.get_task(task.id) for task in tasks)

    assert first.status == TaskStatus.COMPLETED, first.status_reason
    environment = first.runtime["environment"]
    assert environment["source"] == "cache-build" and environment["manager"] == "poetry"
    assert environment["summary"]["installer"] == "uv" and environment["summary"]["lock"] == "poetry.lock"
    assert {line.split("==")[0] for line in first.requirements.frozen} == {"packaging", "six"}
    assert any(line.startswith("six ") for line in log_lines(plane, first.id))

    assert stale_task.status == TaskStatus.FAILED and "\n" not in stale_task.status_reason
    assert stale_task.status_reason.startswith("poetry.lock does not match pyproject.toml")
    assert "run `poetry lock`" in stale_task.status_reason
    assert broken_task.status == TaskStatus.FAILED and "\n" not in broken_task.status_reason
    assert "is not a usable poetry.lock" in broken_task.status_reason

    assert second.status == TaskStatus.COMPLETED and second.runtime["environment"]["source"] == "cache-hit"
    cache = EnvironmentCache.from_config(config)
    assert cache is not None and [entry.complete for entry in cache.entries()] == [True]


def test_a_task_without_a_lock_goes_to_pip(
    plane: ControlPlane, env_config: ConfigFactory, offline_index: Path, tmp_path: Path
) -> None:
    code = tmp_path / "code"
    code.mkdir()
    (code / "main.py").write_text("import tinypkg\n")
    # a project without a lock: the agent does not lock it
    (code / "pyproject.toml").write_text('[project]\nname = "x"\nversion = "1"\n')
    task = run(plane, folder_task(plane, code, pip=["tinypkg==1.0"]), env_config(POETRY))
    assert task.status == TaskStatus.COMPLETED, task.status_reason
    assert task.runtime["environment"]["manager"] == "pip"
    assert any(
        "package manager 'poetry' does not apply to this task; using pip" in line
        for line in log_lines(plane, task.id)
    )


def test_type_pip_leaves_a_poetry_lock_alone_as_clearml_agent_does(
    plane: ControlPlane, plain_project: Path, env_config: ConfigFactory, offline_index: Path, tmp_path: Path
) -> None:
    code = support.copy_project(plain_project, tmp_path / "code")
    (code / "main.py").write_text("import tinypkg\n")
    task = run(plane, folder_task(plane, code, pip=["tinypkg==1.0"]), env_config())
    assert task.status == TaskStatus.COMPLETED, task.status_reason
    assert task.runtime["environment"]["manager"] == "pip" and task.requirements.frozen == ["tinypkg==1.0"]


def test_the_lock_of_the_working_dir_with_poetry_files_from_repo_working_dir(
    plane: ControlPlane, plain_project: Path, env_config: ConfigFactory, offline_index: Path, tmp_path: Path
) -> None:
    code = tmp_path / "code"
    code.mkdir()
    support.copy_project(plain_project, code / "app")
    at_root = run(
        plane, folder_task(plane, code, pip=["tinypkg==1.0"], working_dir="app"), env_config(POETRY)
    )
    assert at_root.runtime["environment"]["manager"] == "pip"  # no poetry.lock at the root
    settings = {**POETRY, "agent.package_manager.poetry_files_from_repo_working_dir": True}
    in_app = run(plane, folder_task(plane, code, working_dir="app"), env_config(settings))
    assert in_app.status == TaskStatus.COMPLETED, in_app.status_reason
    assert in_app.runtime["environment"]["manager"] == "poetry"
    assert in_app.runtime["environment"]["summary"]["lock"] == "app/poetry.lock"


def test_without_the_plugin_a_poetry_task_fails_with_the_install_hint(
    plane: ControlPlane,
    plain_project: Path,
    env_config: ConfigFactory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CLEARML_CORE_DISABLE_PLUGINS", "pkgmgr_poetry")
    reset_registry()  # the plane's fixture found the plugins already
    code = support.copy_project(plain_project, tmp_path / "code")
    task = run(plane, folder_task(plane, code), env_config(POETRY))
    assert task.status == TaskStatus.FAILED
    assert "no package manager named 'poetry' is installed" in task.status_reason
    assert task.status_reason.endswith(
        "pip install 'clearml-core[poetry]' (the poetry package manager, clearml-core-pkgmgr-poetry)"
    )
