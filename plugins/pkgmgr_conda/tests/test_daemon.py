"""Conda tasks through the real agent: the daemon, ``agent build``, ``task create`` recording a conda
environment, the frozen record, a bad task among good ones, and the plugin missing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clearml_core.agent.execute import execute_task
from clearml_core.config import Config
from clearml_core.controlplane import ControlPlane, Requirements, Task, TaskStatus
from clearml_core.environments.cache import EnvironmentCache
from plugins.pkgmgr_conda.tests.conftest import CondaConfig
from tests.agent.conftest import Daemons, Tasks, log_lines
from tests.helpers import run_cli

PROBE = """
import os, sys, tinypkg, beta
print("prefix", sys.prefix)
print("conda", os.environ["CONDA_PREFIX"])
print("versions", tinypkg.VERSION, beta.VERSION)
"""
ENVIRONMENT = "dependencies:\n  - alpha\n  - pip:\n    - beta\n"


def _task(plane: ControlPlane, tasks: Tasks, script: str, conda: str, pip: list[str] | None = None) -> Task:
    task = tasks.create(script)
    return plane.update_task(task.id, requirements=Requirements(conda=conda, pip=list(pip or [])))


def _use(config: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLEARML_CONFIG_FILE", str(config.files[0]))


def test_the_daemon_runs_conda_tasks_and_survives_a_bad_one(
    plane: ControlPlane,
    tasks: Tasks,
    daemons: Daemons,
    conda_config: CondaConfig,
    conda_channel: Path,
    offline_index: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = conda_config()
    _use(config, monkeypatch)
    plane.create_queue("condaq")
    bad = _task(plane, tasks, "print('never runs')", "dependencies: [alpha, no-such-package]")
    good = _task(plane, tasks, PROBE, ENVIRONMENT)
    again = _task(plane, tasks, PROBE, ENVIRONMENT)
    for task in (bad, good, again):
        plane.enqueue(task.id, "condaq")
    daemon = daemons.start("--queue", "condaq", "--stop-when-empty")
    assert daemon.wait(300) == 0, daemons.output()

    failed = plane.get_task(bad.id)
    assert failed.status == TaskStatus.FAILED and "\n" not in failed.status_reason
    assert failed.status_reason.startswith("solving the conda environment failed: ")
    assert "no-such-package" in failed.status_reason

    record = plane.get_task(good.id)
    assert record.status == TaskStatus.COMPLETED, record.status_reason
    environment = record.runtime["environment"]
    assert environment["manager"] == "conda" and environment["source"] == "cache-build"
    lines = log_lines(plane, good.id)
    assert f"prefix {environment['path']}" in lines and f"conda {environment['path']}" in lines
    assert "versions 2.0 1.0" in lines
    channel = conda_channel.as_uri()
    assert f"alpha ==1.0 0[channel={channel}]" in record.requirements.frozen
    assert f"tinypkg ==2.0 0[channel={channel}]" in record.requirements.frozen
    assert "beta==1.0" in record.requirements.frozen
    assert record.requirements.conda == ENVIRONMENT  # conda_full_env_update is off

    second = plane.get_task(again.id)
    assert second.status == TaskStatus.COMPLETED
    assert second.runtime["environment"]["source"] == "cache-hit"
    assert second.runtime["environment"]["path"] == environment["path"]
    cache = EnvironmentCache.from_config(config)
    assert cache is not None and [entry.complete for entry in cache.entries()] == [True]


def test_without_the_plugin_a_conda_task_fails_with_the_install_hint(
    plane: ControlPlane,
    tasks: Tasks,
    daemons: Daemons,
    conda_config: CondaConfig,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _use(conda_config(), monkeypatch)
    plane.create_queue("nocondaq")
    task = _task(plane, tasks, "print(1)", "dependencies: [alpha]")
    plane.enqueue(task.id, "nocondaq")
    daemon = daemons.start(
        "--queue", "nocondaq", "--stop-when-empty", env={"CLEARML_CORE_DISABLE_PLUGINS": "pkgmgr_conda"}
    )
    assert daemon.wait(120) == 0, daemons.output()
    reason = plane.get_task(task.id).status_reason
    assert "no package manager named 'conda' is installed" in reason
    assert "pip install 'clearml-core[conda]'" in reason


def test_full_env_update_writes_the_environment_back_into_the_task(
    plane: ControlPlane, tasks: Tasks, conda_config: CondaConfig, conda_channel: Path
) -> None:
    config = conda_config({"agent.package_manager.conda_full_env_update": True})
    task = _task(plane, tasks, "import alpha", "dependencies: [alpha]")
    running = plane.start(task.id, "tester")
    assert execute_task(plane, running, config=config, worker_id="tester").status == TaskStatus.COMPLETED
    conda = plane.get_task(task.id).requirements.conda
    assert f'"alpha ==1.0 0[channel={conda_channel.as_uri()}]"' in conda
    assert f'"tinypkg ==2.0 0[channel={conda_channel.as_uri()}]"' in conda
    assert f'channels:\n  - "{conda_channel.as_uri()}"' in conda
    # a clone installs exactly that environment
    clone = plane.create_task(Task(name="clone", script=task.script, requirements=Requirements(conda=conda)))
    running = plane.start(clone.id, "tester")
    assert execute_task(plane, running, config=config, worker_id="tester").status == TaskStatus.COMPLETED
    assert plane.get_task(clone.id).requirements.frozen == plane.get_task(task.id).requirements.frozen


def test_agent_build_and_task_create_recording_a_conda_environment(
    plane: ControlPlane,
    tasks: Tasks,
    conda_config: CondaConfig,
    offline_index: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = conda_config({"sdk.development.detect_with_conda_freeze": True})
    _use(config, monkeypatch)
    original = _task(plane, tasks, PROBE, ENVIRONMENT)
    target = tmp_path / "built-env"
    built = run_cli("agent", "build", "--id", original.id, "--target", str(target), "--json", timeout=300)
    assert built.code == 0, built.text
    result = json.loads(built.out)
    assert result["manager"] == "conda" and result["target"] == str(target)
    assert (target / "conda-meta").is_dir() and result["python"] == str(target / "bin" / "python")
    text = run_cli("agent", "build", "--id", original.id, "--target", str(tmp_path / "again"), timeout=300)
    assert text.code == 0 and f"activate: conda activate {tmp_path / 'again'}" in text.out
    globally = run_cli(
        "agent", "build", "--id", original.id, "--target", str(tmp_path / "global"), "--install-globally",
        timeout=300,
    )  # fmt: skip
    assert globally.code == 2 and "--install-globally is for pip environments" in globally.err

    # task create, run from inside that environment, records it as the task's conda requirements
    folder = tasks.folder(PROBE)
    created = run_cli(
        "task", "create", "--name", "recorded", "--folder", str(folder), "--script", "main.py",
        env={"CONDA_PREFIX": str(target)},
    )  # fmt: skip
    assert created.code == 0, created.text
    recorded = plane.get_task(created.out.strip())
    assert "(sdk.development.detect_with_conda_freeze)" in recorded.requirements.conda
    assert '"alpha ==1.0 0[channel=' in recorded.requirements.conda
    assert '- pip:\n      - "beta==1.0"' in recorded.requirements.conda
    running = plane.start(recorded.id, "tester")
    assert execute_task(plane, running, config=config, worker_id="tester").status == TaskStatus.COMPLETED
    assert plane.get_task(recorded.id).requirements.frozen == result["packages"]
    assert "versions 2.0 1.0" in log_lines(plane, recorded.id)
