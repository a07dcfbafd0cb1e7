"""``clearml-core agent build --id ID --target DIR``: a task's environment in a folder."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from clearml_core.controlplane import ControlPlane, Requirements
from tests.agent.conftest import Tasks
from tests.environments.conftest import ConfigFactory
from tests.helpers import run_cli


@pytest.fixture
def conf(env_config: ConfigFactory, offline_index: Path) -> dict[str, str]:
    config = env_config()
    return {"CLEARML_CONFIG_FILE": str(config.files[0])}


def test_build_materialises_the_environment_in_the_folder(
    plane: ControlPlane, tasks: Tasks, conf: dict[str, str], tmp_path: Path
) -> None:
    task = tasks.create("print(1)")
    plane.update_task(task.id, requirements=Requirements(pip=["alpha"]))
    target = tmp_path / "built"
    result = run_cli("agent", "build", "--id", task.id, "--target", str(target), env=conf, timeout=300)
    assert result.code == 0, result.text
    assert f"built the environment of task {task.id} in {target}" in result.out
    assert f"python:   {target / 'bin' / 'python'}" in result.out
    done = subprocess.run(
        [str(target / "bin" / "python"), "-c", "import alpha, tinypkg; print(tinypkg.VERSION)"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.stdout.strip() == "2.0", done.stderr
    log = (target / "clearml-build" / "build.log").read_text()
    assert "Installed 2 packages" in log or "+ alpha==1.0" in log
    assert result.err == ""  # not a terminal: no status line
    assert plane.get_task(task.id).status.value == "created"  # a build does not run the task


def test_build_json_and_a_requirements_file_of_a_folder_task(
    plane: ControlPlane, tasks: Tasks, conf: dict[str, str], tmp_path: Path
) -> None:
    task = tasks.create("print(1)")
    (Path(task.script.folder) / "requirements.txt").write_text("beta\n")
    result = run_cli(
        "agent", "build", "--id", task.id, "--target", str(tmp_path / "b"), "--json", env=conf, timeout=300
    )
    assert result.code == 0, result.text
    data = json.loads(result.out)
    assert data["packages"] == ["beta==1.0"] and data["target"] == str(tmp_path / "b")
    assert data["summary"]["source"] == "requirements.txt" and data["manager"] == "pip"


def test_build_refuses_a_folder_in_use_and_reports_a_failed_build(
    plane: ControlPlane, tasks: Tasks, conf: dict[str, str], tmp_path: Path
) -> None:
    task = tasks.create("print(1)")
    plane.update_task(task.id, requirements=Requirements(pip=["no-such-package-xyz"]))
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "file").write_text("x")
    refused = run_cli("agent", "build", "--id", task.id, "--target", str(busy), env=conf)
    assert refused.code == 2 and "is not an empty folder" in refused.err and "Traceback" not in refused.err
    target = tmp_path / "never"
    failed = run_cli("agent", "build", "--id", task.id, "--target", str(target), env=conf, timeout=300)
    assert failed.code == 2, failed.text
    assert "installing the task's requirements failed: " in failed.err and "no-such-package-xyz" in failed.err
    assert not target.exists() and (tmp_path / "never.build.log").is_file()
    assert str(tmp_path / "never.build.log") in failed.err
    docker = run_cli("agent", "build", "--id", task.id, "--target", str(target), "--docker", env=conf)
    assert docker.code == 2 and "--docker" in docker.err
    unknown = run_cli("agent", "build", "--id", "0" * 32, "--target", str(target), env=conf)
    assert unknown.code == 2 and "no task with id" in unknown.err


def test_on_a_terminal_a_status_line_shows_the_latest_line() -> None:
    import io

    from clearml_core.environments.materialize import StatusLine

    out = io.StringIO()
    status = StatusLine(out)
    status("agent", "clearml-core: installing the task's requirements with uv")
    status("stderr", "Resolved 9 packages in 200ms")
    status("stderr", "   ")
    status.clear()
    assert out.getvalue() == (
        "\r\033[Kinstalling the task's requirements with uv\r\033[KResolved 9 packages in 200ms\r\033[K"
    )
