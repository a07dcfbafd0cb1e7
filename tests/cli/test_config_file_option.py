"""The root ``--config-file PATH`` (clearml-agent's): this command and what it starts read that file."""

from __future__ import annotations

import json
from pathlib import Path

from clearml_core.controlplane import open_control_plane
from tests.agent.conftest import Tasks, log_lines
from tests.helpers import run_cli


def test_config_file_applies_to_the_command_and_the_processes_it_starts(
    clearml_home: Path, tmp_path: Path
) -> None:
    conf = tmp_path / "agent.conf"
    conf.write_text('agent.worker_id: "from-the-file"\nagent.enable_task_env: true\n')
    shown = run_cli("--config-file", str(conf), "config", "show", "agent.worker_id", "--json")
    assert shown.code == 0, shown.text
    assert json.loads(shown.out) == "from-the-file"

    with open_control_plane() as plane:
        plane.create_queue("q")
        task = Tasks(plane, tmp_path / "projects").create(
            "import os\nprint('config', os.environ['CLEARML_CONFIG_FILE'], 'env', os.environ.get('FROM_TASK'))\n",
            queue="q",
            env={"FROM_TASK": "applied"},
        )
        result = run_cli(
            "--config-file",
            str(conf),
            "agent",
            "daemon",
            "--queue",
            "q",
            "--stop-when-empty",
            "--polling-interval",
            "0.1",
        )
        assert result.code == 0, result.text
        assert "worker from-the-file listening to q" in result.err
        # the task sees the file too, and the file's agent.enable_task_env applied its variables
        assert f"config {conf} env applied" in log_lines(plane, task.id)


def test_a_missing_config_file_is_one_line(tmp_path: Path) -> None:
    result = run_cli("--config-file", str(tmp_path / "nope.conf"), "config", "show")
    assert result.code == 2
    assert result.err.strip() == (
        f"error: --config-file {tmp_path / 'nope.conf'}: there is no file {tmp_path / 'nope.conf'}; "
        "give the path of a clearml.conf"
    )
