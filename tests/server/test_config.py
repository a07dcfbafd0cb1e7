"""The server's configuration, read as ClearML server reads its own: folders, overrides, mistakes."""

from __future__ import annotations

import base64
import time
from pathlib import Path

import bcrypt
import pytest

from clearml_core.cli.main import execute
from clearml_core.errors import ConfigError
from clearml_core.server.config import load_server_config
from clearml_core.server.settings import ServerSettings
from clearml_core.testing.clearml_server import run_clearml_server
from tests.server.support import local_server


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_without_any_folder(tmp_path) -> None:
    settings = ServerSettings.from_config(load_server_config({"CLEARML_CONFIG_DIR": str(tmp_path)}))
    assert (settings.api.port, settings.files.port, settings.web.port) == (8008, 8081, 8080)
    assert settings.api.ip == "127.0.0.1"
    assert (settings.watchdog_threshold_sec, settings.watchdog_interval_sec) == (7200, 900)
    assert not settings.fixed_users_enabled


def test_files_by_name_later_folders_win_and_overrides_win_over_files(tmp_path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    write(first, "apiserver.conf", "listen { port: 9000, ip: 0.0.0.0 }\nauth.cookies.domain: .example.com")
    write(first, "services/tasks.conf", "non_responsive_tasks_watchdog.threshold_sec: 60")
    write(second, "apiserver.conf", "listen.port: 9001")
    write(second, "services.conf", "tasks.non_responsive_tasks_watchdog.watch_interval_sec: 5")
    write(second, "fileserver.conf", "listen.port: 9081")
    environ = {"CLEARML_CONFIG_DIR": f"{first}:{second}", "CLEARML__WEBSERVER__LISTEN__PORT": "9080"}

    config = load_server_config(environ)
    settings = ServerSettings.from_config(config)

    assert (settings.api.ip, settings.api.port) == ("0.0.0.0", 9001)
    assert (settings.files.port, settings.web.port) == (9081, 9080)
    assert settings.cookie.domain == ".example.com"
    assert (settings.watchdog_threshold_sec, settings.watchdog_interval_sec) == (60, 5)
    assert config.origin("apiserver.listen.port") == f"{second / 'apiserver.conf'}:1"
    assert config.origin("webserver.listen.port") == "env CLEARML__WEBSERVER__LISTEN__PORT"


def test_overrides_are_json_typed_by_the_setting_and_others_are_left_alone(tmp_path) -> None:
    environ = {
        "CLEARML_CONFIG_DIR": str(tmp_path),
        "CLEARML__APISERVER__AUTH__FIXED_USERS__ENABLED": "true",
        "CLEARML__APISERVER__AUTH__FIXED_USERS__USERS": '[{"username": "jane", "password": "pw", "name": "Jane"}]',
        "CLEARML__SDK__AWS__S3__KEY": "clearml.conf's, not the server's",
    }
    settings = ServerSettings.from_config(load_server_config(environ))
    assert settings.fixed_users_enabled
    assert [(u.username, u.name) for u in settings.fixed_users] == [("jane", "Jane")]


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        (
            "CLEARML__APISERVER__LISTEN__PORT",
            "eighty",
            r"CLEARML__APISERVER__LISTEN__PORT.*must be an integer",
        ),
        (
            "CLEARML__APISERVER__AUTH__FIXED_USERS__USERS",
            '[{"username": ',
            r"CLEARML__APISERVER__AUTH__FIXED_USERS__USERS.*does not parse",
        ),
        (
            "CLEARML__APISERVER__AUTH__FIXED_USERS__ENABLED",
            "maybe",
            r"fixed_users.enabled must be true or false",
        ),
    ],
)
def test_a_bad_override_is_named(tmp_path, variable: str, value: str, expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        ServerSettings.from_config(load_server_config({"CLEARML_CONFIG_DIR": str(tmp_path), variable: value}))


def test_a_syntax_error_names_file_and_line(tmp_path) -> None:
    path = write(tmp_path, "apiserver.conf", "listen {\n  port: 9000\n  ip = = x\n}\n")
    with pytest.raises(ConfigError) as info:
        load_server_config({"CLEARML_CONFIG_DIR": str(tmp_path)})
    assert str(info.value).startswith(f"{path}:3: HOCON syntax error")
    assert "\n" not in str(info.value)


def test_a_missing_folder_is_named(tmp_path) -> None:
    with pytest.raises(ConfigError, match="CLEARML_CONFIG_DIR names .*nowhere, which is not a folder"):
        load_server_config({"CLEARML_CONFIG_DIR": f"{tmp_path}:{tmp_path / 'nowhere'}"})


def hashed(password: str) -> str:
    return base64.b64encode(bcrypt.hashpw(password.encode(), bcrypt.gensalt(4))).decode()


def test_a_password_that_is_no_base64_bcrypt_hash_is_refused_naming_the_user_only(tmp_path) -> None:
    write(
        tmp_path,
        "apiserver.conf",
        "auth.fixed_users { enabled: true, pass_hashed: true, users: ["
        f'{{username: "ok", password: "{hashed("fine")}", name: "Ok"}}, '
        '{username: "jane", password: "$2b$12$not-base64-at-all-but-looks-like-bcrypt", name: "Jane"}] }',
    )
    with pytest.raises(ConfigError) as info:
        ServerSettings.from_config(load_server_config({"CLEARML_CONFIG_DIR": str(tmp_path)}))
    message = str(info.value)
    assert "users[1] (jane)" in message and "base64 of a bcrypt hash" in message
    assert "not-base64" not in message


def test_the_command_stops_with_one_line_on_a_bad_setting(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("CLEARML_CONFIG_DIR", str(tmp_path))
    monkeypatch.setenv("CLEARML__APISERVER__LISTEN__PORT", "99999")
    code = execute(["server", "--control-plane", f"sqlite:///{tmp_path / 'state.db'}"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.strip().splitlines() == [
        "error: env CLEARML__APISERVER__LISTEN__PORT: apiserver.listen.port must be a port number, got 99999"
    ]


def test_database_variables_of_clearml_server_are_reported_as_not_used(tmp_path) -> None:
    env = {"CLEARML_MONGODB_SERVICE_HOST": "mongo", "CLEARML_ELASTIC_SERVICE_HOST": "elastic"}
    with run_clearml_server(tmp_path / "server", env=env, roles=("api",)) as server:
        log = server.log.read_text()
    assert "CLEARML_MONGODB_SERVICE_HOST is set, but this server keeps everything in the control plane" in log
    assert "CLEARML_ELASTIC_SERVICE_HOST is set" in log


def test_the_watchdog_stops_tasks_whose_worker_went_silent(tmp_path) -> None:
    with local_server(tmp_path / "server", watchdog_threshold_sec=0.5, watchdog_interval_sec=0.1) as server:
        client = server.client()
        task = client.call("tasks.create", {"name": "silent", "type": "training"}).data["id"]
        client.call("tasks.started", {"task": task})
        deadline = time.monotonic() + 30
        while (record := client.call("tasks.get_by_id", {"task": task}).data["task"])[
            "status"
        ] == "in_progress":
            assert time.monotonic() < deadline, "the watchdog did not stop the task"
            time.sleep(0.05)
    assert record["status"] == "stopped"
    assert record["status_reason"].startswith("Forced stop (non-responsive)")
