"""Choosing the execution environment: a third-party plugin's environment through
``--execution-env`` and ``agent.execution_env``, unknown names, and clearml-agent's docker-only
flags, which fail the same way in daemon, execute and build while no docker environment is installed
(the docker plugin's own tests run them with it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from clearml_core.controlplane import ControlPlane, TaskStatus
from tests import plugin_dists
from tests.plugin_dists import PluginDist

from ..helpers import run_cli
from .conftest import Tasks, log_lines

FAST = ("--polling-interval", "0.1")
MARK = "set-by-the-marked-environment"


def marked() -> PluginDist:
    """An execution environment ``marked``: the local process environment, plus a variable the
    task can print, so a test sees that this environment (and not ``venv``) started the task."""
    return PluginDist(
        distribution="clearml-test-marked",
        entry_point="marked",
        package="clearml_test_marked",
        files={
            "__init__.py": """
                from clearml_core import ExecutionEnvSpec, hookimpl


                @hookimpl
                def clearml_execution_environments():
                    return [ExecutionEnvSpec(name="marked", factory="clearml_test_marked.env:MarkedEnvironment")]
                """,
            "env.py": f"""
                import dataclasses

                from clearml_core.runners.local import LocalProcessEnvironment


                class MarkedEnvironment(LocalProcessEnvironment):
                    name = "marked"

                    def start(self, spec, sink):
                        env = {{**spec.env, "CLEARML_TEST_MARK": "{MARK}"}}
                        return super().start(dataclasses.replace(spec, env=env), sink)
                """,
        },
    )


@pytest.fixture
def site(tmp_path: Path) -> dict[str, str]:
    """The environment a subprocess needs to see the ``marked`` plugin."""
    return plugin_dists.install(tmp_path / "site", marked())


PRINT_MARK = "import os\nprint('mark', os.environ.get('CLEARML_TEST_MARK'))\n"


def test_a_plugins_environment_runs_the_task_with_the_flag_or_the_setting(
    plane: ControlPlane, tasks: Tasks, site: dict[str, str], clearml_conf: Path
) -> None:
    plane.create_queue("q")
    by_flag = tasks.create(PRINT_MARK, queue="q")
    result = run_cli(
        "agent", "daemon", "--queue", "q", "--stop-when-empty", *FAST, "--execution-env", "marked", env=site
    )
    assert result.code == 0, result.text
    assert f"mark {MARK}" in log_lines(plane, by_flag.id)
    assert plane.get_task(by_flag.id).runtime["execution_environment"] == "marked"

    clearml_conf.write_text('agent.execution_env: "marked"\n')
    by_setting = tasks.create(PRINT_MARK)
    result = run_cli("agent", "execute", "--id", by_setting.id, "--quiet", env=site)
    assert result.code == 0, result.text
    assert f"mark {MARK}" in log_lines(plane, by_setting.id)

    by_override = tasks.create(PRINT_MARK)
    result = run_cli(
        "agent", "execute", "--id", by_override.id, "--execution-env", "venv", "--quiet", env=site
    )
    assert result.code == 0, result.text
    assert "mark None" in log_lines(plane, by_override.id)


def test_an_unknown_environment_lists_the_installed_ones(
    plane: ControlPlane, tasks: Tasks, site: dict[str, str], clearml_conf: Path
) -> None:
    plane.create_queue("q")
    task = tasks.create("print(1)")
    expected = (
        "error: no execution environment named 'nope' is installed (installed: docker, marked, venv); "
        "check --execution-env or agent.execution_env"
    )
    for args in (
        ["daemon", "--queue", "q", "--execution-env", "nope"],
        ["execute", "--id", task.id, "--execution-env", "nope"],
    ):
        result = run_cli("agent", *args, env=site)
        assert result.code == 2 and result.err.strip() == expected, result.text
    clearml_conf.write_text('agent.execution_env: "nope"\n')
    result = run_cli("agent", "daemon", "--queue", "q", env=site)
    assert result.code == 2 and result.err.strip() == expected, result.text
    both = run_cli("agent", "daemon", "--queue", "q", "--execution-env", "marked", "--docker", env=site)
    assert both.code == 2 and "--docker runs tasks in the docker execution environment" in both.err
    assert plane.get_task(task.id).status == TaskStatus.CREATED


DOCKER_ONLY = [
    ("daemon", ["--docker"], "--docker"),
    ("daemon", ["--docker", "python:3.12 --ipc=host"], "--docker"),
    ("daemon", ["--podman"], "--podman"),
    ("daemon", ["--force-current-version"], "--force-current-version"),
    ("execute", ["--docker", "python:3.12"], "--docker"),
    ("execute", ["--podman", "python:3.12"], "--podman"),
    ("build", ["--docker"], "--docker"),
    ("build", ["--force-docker"], "--force-docker"),
    ("build", ["--entry-point", "reuse_task"], "--entry-point"),
]


@pytest.mark.parametrize(
    ("command", "flags", "flag"), DOCKER_ONLY, ids=[f"{c} {' '.join(f)}" for c, f, _ in DOCKER_ONLY]
)
def test_docker_only_flags_need_the_docker_plugin(
    plane: ControlPlane, tasks: Tasks, tmp_path: Path, command: str, flags: list[str], flag: str
) -> None:
    plane.create_queue("q")
    task = tasks.create("print(1)")
    args = {
        "daemon": ["--queue", "q"],
        "execute": ["--id", task.id],
        "build": ["--id", task.id, "--target", str(tmp_path / "env")],
    }[command]
    result = run_cli("agent", command, *args, *flags, env={"CLEARML_CORE_DISABLE_PLUGINS": "*"})
    assert result.code == 2, result.text
    assert result.err.strip() == (
        f"error: docker mode ({flag}) needs a docker execution environment: install it with pip install "
        "'clearml-core[docker]' (the clearml-core-runner-docker plugin), or run the task in the local "
        "'venv' environment (without the docker flags)"
    )
    assert plane.get_task(task.id).status == TaskStatus.CREATED and not (tmp_path / "env").exists()


def test_the_docker_environment_named_in_the_setting_needs_the_plugin_too(
    plane: ControlPlane, clearml_conf: Path
) -> None:
    plane.create_queue("q")
    clearml_conf.write_text('agent.execution_env: "docker"\n')
    result = run_cli("agent", "daemon", "--queue", "q", env={"CLEARML_CORE_DISABLE_PLUGINS": "*"})
    assert (
        result.code == 2
        and "docker mode (agent.execution_env) needs a docker execution environment" in result.err
    )
