"""Who may call: fixed users, access keys and whose they are, sign-in throttling, secrets kept out."""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterator

import bcrypt
import pytest

from clearml_core.cli.main import execute
from clearml_core.server.accounts import KEYS
from clearml_core.server.fixed_users import FixedUser, user_id
from clearml_core.testing.clearml_server import ApiClient, run_clearml_server
from tests.server.support import LocalServer, local_server

COMPANY = "d1bd92a3b039400cbafc60a7a5b1e52b"
JANE_PASSWORD = "jane's long password"
JOHN_PASSWORD = "john's other password"


def fixed(username: str, password: str, name: str) -> FixedUser:
    return FixedUser(username, password, name, user_id(COMPANY, username))


@pytest.fixture
def locked(tmp_path) -> Iterator[LocalServer]:
    users = (fixed("jane", JANE_PASSWORD, "Jane Doe"), fixed("john", JOHN_PASSWORD, "John Roe"))
    with local_server(tmp_path / "locked", fixed_users_enabled=True, fixed_users=users) as server:
        yield server


def sign_in(server: LocalServer, username: str, password: str) -> ApiClient:
    client = ApiClient(server.api_url, username, password)
    client.login()
    return client


def test_fixed_users_sign_in_with_their_password_only(locked: LocalServer) -> None:
    jane = sign_in(locked, "jane", JANE_PASSWORD)
    me = jane.call("users.get_current_user").data["user"]
    assert (me["name"], me["id"]) == ("Jane Doe", user_id(COMPANY, "jane"))
    anyone = ApiClient(locked.api_url)
    assert anyone.call("auth.login", headers=anyone.basic("jane", "wrong")).code == (401, 22)
    assert anyone.call("auth.login", headers=anyone.basic("jane", JOHN_PASSWORD)).code == (401, 22)
    assert anyone.call("auth.login", headers=anyone.basic("mallory", "")).code == (401, 22)


def test_with_fixed_users_nothing_but_login_is_served_without_credentials(locked: LocalServer) -> None:
    anyone = ApiClient(locked.api_url)
    for name in (
        "tasks.get_all",
        "queues.get_all",
        "workers.get_all",
        "projects.get_all",
        "events.get_task_log",
        "users.get_all",
        "auth.create_credentials",
        "server.info",
        "queues.get_next_task",
    ):
        assert anyone.call(name, {"task": "x", "queue": "x"}).code == (401, 20), name
    assert anyone.call("auth.fixed_users_mode").data["enabled"] is True
    assert anyone.call("debug.ping").status == 200


def test_hashed_passwords_are_checked_with_bcrypt(tmp_path) -> None:
    digest = base64.b64encode(bcrypt.hashpw(JANE_PASSWORD.encode(), bcrypt.gensalt(4))).decode()
    users = (fixed("jane", digest, "Jane"),)
    with local_server(
        tmp_path / "hashed", fixed_users_enabled=True, pass_hashed=True, fixed_users=users
    ) as server:
        assert sign_in(server, "jane", JANE_PASSWORD).token
        anyone = ApiClient(server.api_url)
        assert anyone.call("auth.login", headers=anyone.basic("jane", digest)).code == (401, 22)


def test_without_fixed_users_a_browser_signs_in_by_name_but_the_api_wants_a_key(server: LocalServer) -> None:
    anyone = ApiClient(server.api_url)
    reply = anyone.call("auth.login", headers=anyone.basic("visitor", ""))
    assert reply.status == 200
    token = reply.data["token"]
    assert (
        anyone.call("users.get_current_user", headers={"Authorization": f"Bearer {token}"}).data["user"][
            "name"
        ]
        == "visitor"
    )
    assert anyone.call("tasks.get_all", headers=anyone.basic("visitor", "")).code == (401, 22)


def test_access_keys_are_their_owners(locked: LocalServer) -> None:
    jane = sign_in(locked, "jane", JANE_PASSWORD)
    john = sign_in(locked, "john", JOHN_PASSWORD)
    made = jane.call("auth.create_credentials", {"label": "laptop"}).data["credentials"]
    key, secret = made["access_key"], made["secret_key"]

    assert [c["access_key"] for c in jane.call("auth.get_credentials").data["credentials"]] == [key]
    assert john.call("auth.get_credentials").data["credentials"] == []
    refused = john.call("auth.revoke_credentials", {"access_key": key})
    assert refused.code == (400, 300)
    by_key = ApiClient(locked.api_url, key, secret)
    assert by_key.call("users.get_current_user", headers=by_key.basic()).data["user"]["name"] == "Jane Doe"
    assert jane.call("auth.revoke_credentials", {"access_key": key}).data["revoked"] == 1
    assert by_key.call("auth.login", headers=by_key.basic()).code == (401, 22)


def test_impersonation_headers_are_refused(client: ApiClient) -> None:
    headers = {"Authorization": f"Bearer {client.token}", "X-ClearML-Impersonate-As": "someone"}
    assert client.call("tasks.get_all", headers=headers).code == (400, 6)


def test_repeated_failed_sign_ins_lock_the_address_out_and_are_logged(tmp_path, caplog) -> None:
    with local_server(tmp_path / "server", login_max_failures=3, login_lockout_sec=300) as server:
        good = server.client()
        attacker = ApiClient(server.api_url)
        caplog.set_level(logging.WARNING, logger="clearml_core.server.auth")
        codes = [
            attacker.call("auth.login", headers=attacker.basic(server.access_key, f"guess{i}")).code
            for i in range(5)
        ]
        assert codes == [(401, 22)] * 3 + [(429, 0)] * 2
        locked_out = attacker.call("auth.login", headers=attacker.basic())
        assert locked_out.status == 429
        assert "Too many failed sign-ins from 127.0.0.1" in locked_out.message
        assert good.call("tasks.get_all").status == 200  # a session token is not a sign-in
        warnings = [r.getMessage() for r in caplog.records if "failed sign-ins" in r.getMessage()]
        assert len(warnings) == 1
        assert "3 failed sign-ins from 127.0.0.1" in warnings[0] and server.access_key in warnings[0]
        assert all("guess" not in record.getMessage() for record in caplog.records)


def test_secrets_appear_in_no_log_answer_or_record(tmp_path, capsys, monkeypatch) -> None:
    users = f'[{{username: "jane", password: "{JANE_PASSWORD}", name: "Jane"}}]'
    config = {"apiserver.conf": f"auth.fixed_users {{ enabled: true, users: {users} }}"}
    with run_clearml_server(tmp_path / "server", config=config, debug=True) as server:
        jane = ApiClient(server.api_url, "jane", JANE_PASSWORD)
        jane.login()
        made = jane.call("auth.create_credentials").data["credentials"]
        wrong = ApiClient(server.api_url, server.access_key, "a wrong secret typed by someone")
        assert wrong.call("auth.login", headers=wrong.basic()).status == 401
        listed = jane.call("auth.get_credentials")
        by_key = ApiClient(server.api_url, made["access_key"], made["secret_key"])
        by_key.login()
        task = by_key.call("tasks.create", {"name": "t", "type": "training"}).data["id"]
        shown = by_key.call("tasks.get_by_id", {"task": task})
        monkeypatch.setenv("CLEARML_CONFIG_DIR", str(server.config_dir))
        assert execute(["server", "credentials", "list", "--control-plane", server.control_plane]) == 0
        printed = capsys.readouterr()
        from clearml_core.controlplane import open_control_plane

        with open_control_plane(server.control_plane) as plane:
            stored = repr(plane.list_documents(KEYS))
        log = server.log.read_text()

    secrets = [JANE_PASSWORD, made["secret_key"], server.secret_key, "a wrong secret typed by someone"]
    for text, where in [
        (log, "the server's log"),
        (listed.meta.__repr__() + repr(listed.data), "get_credentials"),
        (repr(shown.data), "tasks.get_by_id"),
        (printed.out + printed.err, "credentials list"),
        (stored, "the stored keys"),
    ]:
        for secret in secrets:
            assert secret not in text, f"a secret appears in {where}"
    assert made["access_key"] in printed.out
    assert "Returned 200 for auth.create_credentials" in log


def test_a_remembered_token_still_expires_and_a_forged_one_is_refused(tmp_path) -> None:
    with local_server(tmp_path / "server") as server:
        client = ApiClient(server.api_url, server.access_key, server.secret_key)
        client.login()
        token = client.token
        bearer = {"Authorization": f"Bearer {token}"}
        assert client.call("queues.get_default", headers=bearer).status == 200
        assert client.call("queues.get_default", headers=bearer).status == 200  # remembered now

        head, body, signature = token.split(".")
        forged = f"{head}.{body}.{signature[:-2]}{'AA' if signature[-2:] != 'AA' else 'BB'}"
        refused = client.call("queues.get_default", headers={"Authorization": f"Bearer {forged}"})
        assert refused.status == 401

        auth = server.ctx.auth
        real_clock = auth.clock
        auth.clock = lambda: real_clock() + server.ctx.settings.token_max_expiration_sec + 60
        try:
            assert client.call("queues.get_default", headers=bearer).status == 401
        finally:
            auth.clock = real_clock
        client.close()
