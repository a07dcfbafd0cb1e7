"""The API's protocol, as ClearML server speaks it: envelope, versions, errors, sign-in, dispatch."""

from __future__ import annotations

import base64
import json
import threading
from collections import Counter

import pytest

from clearml_core.server.settings import API_VERSION
from clearml_core.testing.clearml_server import ApiClient
from tests.server.support import LocalServer


def token_payload(token: str) -> dict:
    body = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))


def test_login_gives_a_token_that_carries_the_api_version(server: LocalServer) -> None:
    client = server.client(login=False)
    reply = client.call("auth.login", headers=client.basic())

    assert reply.status == 200
    assert reply.code == (200, 0) and reply.message == "OK"
    assert reply.meta["endpoint"] == {
        "name": "auth.login",
        "requested_version": API_VERSION,
        "actual_version": "2.1",
    }
    payload = token_payload(reply.data["token"])
    assert payload["api_version"] == API_VERSION
    assert payload["identity"]["user_name"] == "Default User"
    assert payload["exp"] - payload["iat"] == server.ctx.settings.token_expiration_sec
    assert "clearml_token_basic=" in reply.headers["set-cookie"]
    assert "HttpOnly" in reply.headers["set-cookie"]


def test_a_requested_version_picks_the_newest_endpoint_not_above_it(client: ApiClient) -> None:
    assert client.call("queues.get_all", version="2.5").meta["endpoint"]["actual_version"] == "2.1"
    newer = client.call("workers.get_runtime_properties", {"worker": "w"}, version="2.20")
    assert newer.status == 200 and newer.meta["endpoint"]["actual_version"] == "2.13"
    older = client.call("workers.get_runtime_properties", {"worker": "w"}, version="2.5")
    assert older.code == (404, 0)
    assert older.message == "Unable to find endpoint for name workers.get_runtime_properties and version 2.5"


def test_versions_above_the_servers_are_served_unless_checked(client: ApiClient, tmp_path) -> None:
    assert client.call("queues.get_all", version="2.99").status == 200
    assert client.call("queues.get_all", version="two").code == (400, 2)


def test_an_unknown_endpoint_fails_clearly(client: ApiClient) -> None:
    reply = client.call("tasks.no_such_action")
    assert reply.status == 404 and reply.code == (404, 0)
    assert "tasks.no_such_action" in reply.message
    assert client.request("POST", "/not-an-endpoint")[0] == 400


def test_missing_wrong_and_malformed_credentials_are_401(server: LocalServer) -> None:
    client = server.client(login=False)
    assert client.call("tasks.get_all").code == (401, 20)
    assert client.call("tasks.get_all", headers={"Authorization": "Bearer not.a.token"}).code == (401, 30)
    assert client.call("tasks.get_all", headers={"Authorization": "Digest x"}).code == (401, 10)
    assert client.call("auth.login", headers={"Authorization": "Basic %%%"}).code == (401, 21)
    wrong = client.call("auth.login", headers=client.basic(secret="wrong"))
    assert wrong.code == (401, 22)
    assert "invalid credentials" in wrong.message
    assert client.call("debug.ping").status == 200  # the one thing served to anyone


def test_a_token_signed_with_another_secret_is_refused(server: LocalServer, client: ApiClient) -> None:
    head, body, _signature = client.login().split(".")
    forged = f"{head}.{body}.{base64.urlsafe_b64encode(b'x' * 32).decode().rstrip('=')}"
    assert client.call("tasks.get_all", headers={"Authorization": f"Bearer {forged}"}).code == (401, 30)


def test_malformed_json_is_400_and_changes_nothing(server: LocalServer, client: ApiClient) -> None:
    headers = {"Authorization": f"Bearer {client.token}", "Content-Type": "application/json"}
    status, _headers, body = client.request("POST", "/tasks.create", b'{"name": "x", ', headers)
    envelope = json.loads(body)
    assert status == 400 and envelope["meta"]["result_subcode"] == 12
    assert "malformed JSON" in envelope["meta"]["result_msg"]
    status, _headers, body = client.request("POST", "/tasks.create", b"[1, 2]", headers)
    assert status == 400 and "JSON object" in json.loads(body)["meta"]["result_msg"]
    assert server.ctx.plane.list_tasks() == []


def test_a_body_over_the_limit_is_413_before_it_is_read(tmp_path) -> None:
    from tests.server.support import local_server

    with local_server(tmp_path / "small", max_request_bytes=1000) as server:
        client = server.client()
        reply = client.call("tasks.create", {"name": "x" * 2000, "type": "training"})
        assert reply.status == 413 and reply.code == (413, 0)
        assert "apiserver.max_request_size_mb" in reply.message
        assert server.ctx.plane.list_tasks() == []
        assert client.call("tasks.get_all").status == 200  # the connection was closed, the client goes on


def test_missing_required_fields_are_named(client: ApiClient) -> None:
    reply = client.call("tasks.create", {"type": "training"})
    assert reply.code == (400, 11)
    assert "name" in reply.message


def test_unknown_ids_are_clearmls_errors(client: ApiClient) -> None:
    assert client.call("tasks.get_by_id", {"task": "nope"}).code == (400, 101)
    assert client.call("queues.get_next_task", {"queue": "nope"}).code == (400, 701)
    assert client.call("tasks.create", {"name": "t", "type": "training", "project": "nope"}).code == (
        400,
        401,
    )
    assert client.call("tasks.create", {"name": "t", "type": "no-such-type"}).code == (400, 16)


def test_json_lines_batches(client: ApiClient) -> None:
    task = client.call("tasks.create", {"name": "t", "type": "training"}).data["id"]
    lines = "\n".join(
        json.dumps({"type": "log", "task": task, "msg": f"line {i}", "level": "info"}) for i in range(3)
    )
    headers = {"Authorization": f"Bearer {client.token}", "Content-Type": "application/json-lines"}
    status, _, body = client.request("POST", "/events.add_batch", lines.encode(), headers)
    assert status == 200 and json.loads(body)["data"]["added"] == 3
    status, _, body = client.request("POST", "/events.add_batch", b"[1]\n", headers)
    assert status == 400 and "objects" in json.loads(body)["meta"]["result_msg"]


# -- queues and dispatch --------------------------------------------------------------------------


def new_task(client: ApiClient, name: str = "t") -> str:
    return str(client.call("tasks.create", {"name": name, "type": "training"}).data["id"])


def queue_id(client: ApiClient, name: str) -> str:
    found = client.call("queues.get_all", {"name": f"^{name}$"}).data["queues"]
    return str(found[0]["id"]) if found else str(client.call("queues.create", {"name": name}).data["id"])


def test_the_default_queue_is_there_with_its_system_tag(client: ApiClient) -> None:
    default = client.call("queues.get_default").data
    assert default["name"] == "default"
    queue = client.call("queues.get_by_id", {"queue": default["id"]}).data["queue"]
    assert queue["system_tags"] == ["default"]


def test_enqueue_then_get_next_task_hands_it_out_and_started_confirms(client: ApiClient) -> None:
    task = new_task(client)
    queue = queue_id(client, "default")
    reply = client.call("tasks.enqueue", {"task": task, "queue": queue})
    assert reply.data["queued"] == 1
    assert client.call("tasks.get_by_id", {"task": task}).data["task"]["status"] == "queued"
    assert client.call("queues.get_num_entries", {"queue": queue}).data["num"] == 1

    got = client.call(
        "queues.get_next_task",
        {"queue": queue, "get_task_info": True},
        headers={"X-ClearML-Worker": "w1", "Authorization": f"Bearer {client.token}"},
    )
    assert got.data["entry"]["task"] == task
    assert got.data["task_info"]["user"]
    assert client.call("queues.get_next_task", {"queue": queue}).data == {}
    assert client.call("tasks.started", {"task": task, "force": True}).status == 200
    record = client.call("tasks.get_by_id", {"task": task}).data["task"]
    assert record["status"] == "in_progress" and record["last_worker"] == "w1"
    assert client.call("tasks.completed", {"task": task, "status_reason": "done"}).status == 200
    assert client.call("tasks.get_by_id", {"task": task}).data["task"]["status"] == "completed"


def test_queue_priority_and_move_to_front(client: ApiClient) -> None:
    queue = queue_id(client, "work")
    first, second, third = (new_task(client, name) for name in ("first", "second", "third"))
    for task in (first, second, third):
        client.call("tasks.enqueue", {"task": task, "queue": queue})
    assert client.call("queues.move_task_to_front", {"queue": queue, "task": third}).data["position"] == 0
    order = [client.call("queues.get_next_task", {"queue": queue}).data["entry"]["task"] for _ in range(3)]
    assert order == [third, first, second]


def test_each_task_is_handed_out_once_to_concurrent_agents(server: LocalServer, client: ApiClient) -> None:
    queue = queue_id(client, "race")
    tasks = [new_task(client, f"t{i}") for i in range(40)]
    for task in tasks:
        client.call("tasks.enqueue", {"task": task, "queue": queue})
    got: list[str] = []
    lock = threading.Lock()

    def agent(number: int) -> None:
        mine = server.client()
        headers = {"Authorization": f"Bearer {mine.token}", "X-ClearML-Worker": f"agent-{number}"}
        while True:
            entry = mine.call("queues.get_next_task", {"queue": queue}, headers=headers).data.get("entry")
            if not entry:
                break
            with lock:
                got.append(entry["task"])
        mine.close()

    agents = [threading.Thread(target=agent, args=(n,)) for n in range(6)]
    for thread in agents:
        thread.start()
    for thread in agents:
        thread.join()
    assert Counter(got) == Counter(tasks)


def test_stop_of_a_running_task_asks_its_worker(client: ApiClient) -> None:
    task = new_task(client)
    queue = queue_id(client, "default")
    client.call("tasks.enqueue", {"task": task, "queue": queue})
    client.call("queues.get_next_task", {"queue": queue})
    client.call("tasks.stop", {"task": task})
    record = client.call("tasks.get_all", {"id": [task], "only_fields": ["status", "status_message"]}).data[
        "tasks"
    ][0]
    assert record == {"id": task, "status": "in_progress", "status_message": "stopping"}
    client.call("tasks.stopped", {"task": task})
    assert client.call("tasks.get_by_id", {"task": task}).data["task"]["status"] == "stopped"


def test_enqueue_of_a_task_that_ran_resets_it(client: ApiClient) -> None:
    task = new_task(client)
    client.call("tasks.started", {"task": task})
    client.call("tasks.failed", {"task": task, "status_reason": "boom"})
    assert client.call("tasks.enqueue", {"task": task, "queue_name": "again"}).data["queued"] == 1
    record = client.call("tasks.get_by_id", {"task": task}).data["task"]
    assert record["status"] == "queued" and record["started"] is None
    assert client.call("tasks.enqueue", {"task": task, "queue_name": "again"}).code == (400, 706)


def test_task_fields_round_trip_through_the_control_plane(server: LocalServer, client: ApiClient) -> None:
    project = client.call("projects.create", {"name": "proj"}).data["id"]
    fields = {
        "name": "full",
        "type": "data_processing",
        "project": project,
        "comment": "a comment",
        "tags": ["a"],
        "script": {
            "repository": "https://example.com/r.git",
            "branch": "main",
            "version_num": "abc123",
            "entry_point": "train.py",
            "working_dir": "src",
            "binary": "python3",
            "requirements": {"pip": "numpy\npandas>=2", "conda": "x"},
        },
        "container": {
            "image": "python:3.12",
            "arguments": "--ipc=host -e 'A=1 2'",
            "setup_shell_script": "true",
        },
        "hyperparams": {"Args": {"lr": {"section": "Args", "name": "lr", "value": "0.1"}}},
        "configuration": {"cfg": {"name": "cfg", "value": "a: 1"}},
        "output_dest": "s3://bucket/out",
    }
    task = client.call("tasks.create", fields).data["id"]
    doc = client.call("tasks.get_by_id", {"task": task}).data["task"]
    assert doc["project"] == project and doc["type"] == "data_processing"
    assert doc["script"]["requirements"] == {"pip": "numpy\npandas>=2", "conda": "x"}
    assert doc["container"]["arguments"] == "--ipc=host -e 'A=1 2'"
    assert doc["output"]["destination"] == "s3://bucket/out"
    assert doc["hyperparams"] == fields["hyperparams"]
    record = server.ctx.plane.get_task(task)  # what clearml-core's agent and CLI see
    assert record.project == "proj"
    assert record.script.commit == "abc123" and record.script.working_dir == "src"
    assert record.requirements.pip == ["numpy", "pandas>=2"]
    assert record.container.arguments == ["--ipc=host", "-e", "A=1 2"]
    assert record.output_uri == "s3://bucket/out"
    clone = client.call("tasks.clone", {"task": task, "new_task_name": "copy"}).data["id"]
    copied = client.call("tasks.get_by_id", {"task": clone}).data["task"]
    assert copied["name"] == "copy" and copied["parent"] == task
    assert copied["hyperparams"] == fields["hyperparams"] and copied["status"] == "created"


@pytest.mark.parametrize("only_fields", [["status"], ["script.entry_point", "name"]])
def test_only_fields(client: ApiClient, only_fields: list[str]) -> None:
    task = client.call(
        "tasks.create", {"name": "t", "type": "training", "script": {"entry_point": "a.py"}}
    ).data["id"]
    doc = client.call("tasks.get_all", {"id": [task], "only_fields": only_fields}).data["tasks"][0]
    assert set(doc) == {"id", *(field.split(".")[0] for field in only_fields)}


def test_the_web_role_serves_the_page_and_the_api_on_one_origin(server: LocalServer) -> None:
    web = ApiClient(server.web_url)
    status, headers, body = web.request("GET", "/")
    assert status == 200 and b"<title>clearml-core server</title>" in body
    assert "default-src 'self'" in headers["content-security-policy"]
    assert web.request("GET", "/app.js")[0] == 200
    assert web.request("GET", "/../state.db")[0] == 404
    assert web.request("GET", "/%2e%2e/state.db")[0] == 404
    through_page = ApiClient(server.web_url + "/api", server.access_key, server.secret_key)
    through_page.login()
    assert through_page.call("queues.get_default").data["name"] == "default"
