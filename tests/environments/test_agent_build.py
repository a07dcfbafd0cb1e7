"""``clearml-core agent build --id ID --target DIR``: a task's environment in a folder."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from clearml_core.controlplane import ControlPlane, Requirements
from clearml_core.environments.python import current_python
from clearml_core.testing.packages import make_index, make_wheel
from tests.agent.conftest import Tasks
from tests.environments.conftest import ConfigFactory
from tests.helpers import Result, run_cli


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
    no_docker = {**conf, "CLEARML_CORE_DISABLE_PLUGINS": "runner_docker"}
    docker = run_cli("agent", "build", "--id", task.id, "--target", str(target), "--docker", env=no_docker)
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
    shown = out.getvalue()
    assert "installing the task's requirements with uv" in shown and "clearml-core:" not in shown
    assert "\033[2KResolved 9 packages in 200ms" in shown
    assert shown.endswith("\033[2K")  # erased once the build is over


# -- clearml-agent's build flags ------------------------------------------------------------------


def _build(task_id: str, target: Path, *flags: str, env: dict[str, str]) -> Result:
    return run_cli("agent", "build", "--id", task_id, "--target", str(target), *flags, env=env, timeout=300)


def _python_reports(python: Path, code: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [str(python), "-c", code],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, **(env or {})},
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def _another_python() -> Path | None:
    """A working CPython of another minor version than the one running the tests, if the machine
    has one (on PATH, or installed by pyenv or uv in the real home)."""
    import pwd

    home = Path(pwd.getpwuid(os.getuid()).pw_dir)
    current = f"{sys.version_info.major}.{sys.version_info.minor}"
    for minor in range(8, 15):
        version = f"3.{minor}"
        if version == current:
            continue
        found = shutil.which(f"python{version}")
        candidates = [Path(found)] if found else []
        candidates += sorted(home.glob(f".pyenv/versions/{version}.*/bin/python{version}"))
        candidates += sorted(home.glob(f".local/share/uv/python/cpython-{version}.*/bin/python{version}"))
        for candidate in candidates:
            if (
                subprocess.run([str(candidate), "-c", "pass"], capture_output=True, check=False).returncode
                == 0
            ):
                return candidate
    return None


def test_python_version_picks_the_interpreter(
    plane: ControlPlane, tasks: Tasks, conf: dict[str, str], tmp_path: Path
) -> None:
    task = tasks.create("print(1)")
    plane.update_task(task.id, requirements=Requirements(pip=["beta"]))
    missing = _build(task.id, tmp_path / "none", "--python-version", "3.4", env=conf)
    assert missing.code == 2, missing.text
    assert "no Python 3.4 on this machine: none of python3.4, python3, python on PATH is one" in missing.err
    assert not (tmp_path / "none").exists()
    other = _another_python()
    if other is None:
        pytest.skip("this machine has no CPython of another minor version")
    version = _python_reports(other, "import sys; print('%d.%d' % sys.version_info[:2])")
    target = tmp_path / "other"
    path = f"{other.parent}{os.pathsep}{os.environ['PATH']}"
    result = _build(task.id, target, "--python-version", version, env={**conf, "PATH": path})
    assert result.code == 0, result.text
    assert (
        _python_reports(target / "bin" / "python", "import sys, beta; print('%d.%d' % sys.version_info[:2])")
        == version
    )


def test_install_globally_installs_into_the_python_and_the_environment_sees_it(
    plane: ControlPlane, tasks: Tasks, env_config: ConfigFactory, offline_index: Path, tmp_path: Path
) -> None:
    base = current_python().executable
    if subprocess.run([base, "-m", "pip", "--version"], capture_output=True, check=False).returncode != 0:
        pytest.skip(f"{base} has no pip to install globally with")
    config = env_config({"agent.package_manager.installer": "pip"})
    # pip's --user: "globally" lands in a user site of this test, not in the machine's Python
    user = {"PIP_USER": "1", "PYTHONUSERBASE": str(tmp_path / "userbase")}
    task = tasks.create("print(1)")
    plane.update_task(task.id, requirements=Requirements(pip=["alpha"]))
    target = tmp_path / "env"
    conf = {"CLEARML_CONFIG_FILE": str(config.files[0]), **user}
    result = _build(task.id, target, "--install-globally", "--json", env=conf)
    assert result.code == 0, result.text
    data = json.loads(result.out)
    assert data["summary"]["installed_into"] == base
    assert not [line for line in data["packages"] if line.startswith(("alpha", "tinypkg"))]
    assert "include-system-site-packages = true" in (target / "pyvenv.cfg").read_text()
    assert list((tmp_path / "userbase").glob("lib/python*/site-packages/alpha/__init__.py"))
    assert not list(target.glob("lib/python*/site-packages/alpha"))
    seen = _python_reports(target / "bin" / "python", "import alpha, tinypkg; print(alpha.__file__)", user)
    assert seen.startswith(str(tmp_path / "userbase"))


@pytest.fixture
def torch_index(tmp_path: Path) -> Path:
    """PyTorch's layout, locally: <root>/<variant>/torch/torch-2.3.0+<variant>."""
    root = tmp_path / "whl"
    for variant in ("cpu", "cu121"):
        make_index(
            root / variant,
            [make_wheel(tmp_path / "w" / variant, "torch", f"2.3.0+{variant}", module="torch")],
        )
    return root


@pytest.mark.parametrize(
    ("flags", "environ", "variant"),
    [
        (["--cpu-only"], {}, "cpu"),
        (["--gpus", "0"], {"CLEARML_CPU_ONLY": "1"}, "cu121"),
        ([], {"CLEARML_CPU_ONLY": "1"}, "cpu"),
    ],
    ids=["cpu-only", "gpus-win-over-cpu_only", "cpu_only-setting"],
)
def test_gpus_and_cpu_only_decide_the_cuda_of_the_packages(
    plane: ControlPlane,
    tasks: Tasks,
    env_config: ConfigFactory,
    offline_index: Path,
    torch_index: Path,
    tmp_path: Path,
    flags: list[str],
    environ: dict[str, str],
    variant: str,
) -> None:
    config = env_config(
        {"agent.cuda_version": "12.2", "agent.package_manager.pytorch_index_url": torch_index.as_uri()}
    )
    task = tasks.create("print(1)")
    plane.update_task(task.id, requirements=Requirements(pip=["torch==2.3.0"]))
    conf = {"CLEARML_CONFIG_FILE": str(config.files[0]), **environ}
    result = _build(task.id, tmp_path / "env", *flags, "--json", env=conf)
    assert result.code == 0, result.text
    assert json.loads(result.out)["packages"] == [f"torch==2.3.0+{variant}"]
