"""clearml-core's CLI on a ClearML API server: what selects it, what ``doctor`` says, wrong
credentials, and the extra that is missing."""

from __future__ import annotations

import json
from pathlib import Path

from clearml_core.testing.clearml_server import ClearMLServer
from tests.helpers import run_cli


def test_api_server_in_clearml_conf_is_the_control_plane_of_queue_task_and_worker(
    empty_server: ClearMLServer, clearml_conf: Path, tmp_path: Path
) -> None:
    clearml_conf.write_text(empty_server.clearml_conf(), encoding="utf-8")
    (tmp_path / "main.py").write_text("print('hi')\n", encoding="utf-8")

    assert run_cli("queue", "create", "gpu").code == 0
    queues = run_cli("queue", "list", "--json")
    assert queues.code == 0, queues.text
    assert [q["name"] for q in json.loads(queues.out)] == ["default", "gpu"]
    created = run_cli(
        "task", "create", "--name", "from the cli", "--script", "main.py", "--folder", str(tmp_path), "--json"
    )
    assert created.code == 0, created.text
    task_id = json.loads(created.out)["id"]
    tasks = run_cli("task", "list", "--json")
    assert [t["id"] for t in json.loads(tasks.out)] == [task_id]
    assert run_cli("worker", "list", "--json").code == 0

    doctor = run_cli("doctor")
    expected = f"clearml+{empty_server.api_url} (from api.api_server, {clearml_conf}:2; 2 queue(s))"
    assert expected in doctor.out, doctor.text
    assert empty_server.secret_key not in doctor.text


def test_clearml_variables_select_it_without_a_clearml_conf(server_env: ClearMLServer) -> None:
    listed = run_cli("queue", "list", "--json")
    assert listed.code == 0, listed.text
    assert [q["name"] for q in json.loads(listed.out)] == ["default"]
    doctor = run_cli("doctor")
    assert f"clearml+{server_env.api_url} (from api.api_server, env CLEARML_API_HOST" in doctor.out, (
        doctor.text
    )


def test_agent_control_plane_wins_over_api_server(
    empty_server: ClearMLServer, clearml_conf: Path, tmp_path: Path
) -> None:
    local = f"sqlite:///{tmp_path / 'local.db'}"
    clearml_conf.write_text(empty_server.clearml_conf(f'agent.control_plane: "{local}"\n'), encoding="utf-8")
    assert run_cli("queue", "create", "only-here").code == 0
    with_server = run_cli("queue", "list", "--json", env={"CLEARML__AGENT__CONTROL_PLANE": ""})
    assert "only-here" not in with_server.out


def test_wrong_credentials_are_one_clear_line_without_the_secret(
    empty_server: ClearMLServer, clearml_conf: Path
) -> None:
    wrong_secret = "not-the-secret-8812"
    clearml_conf.write_text(
        empty_server.clearml_conf().replace(empty_server.secret_key, wrong_secret), encoding="utf-8"
    )
    for command in (("queue", "list"), ("task", "list", "--json"), ("worker", "list")):
        result = run_cli(*command)
        assert result.code == 2, result.text
        assert result.out == "" and result.err.count("\n") == 1, result.err
        assert f"the ClearML API server at {empty_server.api_url} refused the credentials" in result.err
        assert f"{clearml_conf}" in result.err and wrong_secret not in result.err, result.err


def test_api_server_without_the_plugin_names_the_extra(
    empty_server: ClearMLServer, clearml_conf: Path
) -> None:
    clearml_conf.write_text(empty_server.clearml_conf(), encoding="utf-8")
    result = run_cli("queue", "list", env={"CLEARML_CORE_DISABLE_PLUGINS": "controlplane_clearml"})
    assert result.code == 2, result.text
    assert "pip install 'clearml-core[clearml]'" in result.err and "api.api_server" in result.err


def test_an_unreachable_server_is_a_clear_error(clearml_conf: Path) -> None:
    from clearml_core.testing.servers import free_port

    clearml_conf.write_text(
        f'api {{ api_server: "http://127.0.0.1:{free_port()}", credentials {{ access_key: "K", secret_key: "S" }} }}\n',
        encoding="utf-8",
    )
    result = run_cli("queue", "list")
    assert result.code == 2, result.text
    assert "cannot reach the ClearML API server at http://127.0.0.1:" in result.err


def test_the_server_keeps_its_tasks_in_a_store_not_in_another_api_server(
    empty_server: ClearMLServer, clearml_conf: Path
) -> None:
    clearml_conf.write_text(empty_server.clearml_conf(), encoding="utf-8")
    listed = run_cli("server", "credentials", "list", "--json")  # api.api_server is for its clients
    assert listed.code == 0, listed.text
    refused = run_cli("server", "credentials", "list", "--control-plane", f"clearml+{empty_server.api_url}")
    assert refused.code == 2 and "cannot keep its tasks on another ClearML API server" in refused.err
