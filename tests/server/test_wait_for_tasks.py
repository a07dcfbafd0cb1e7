"""``queues.wait_for_tasks``, clearml-core's long poll: held until a task is enqueued or the timeout
passes, checked like every other call, announced at sign-in, and ended by a stopping server."""

from __future__ import annotations

import threading
import time

import pytest

from clearml_core.server.services import queues
from clearml_core.testing.clearml_server import ApiClient, ApiReply
from tests.helpers import time_bound
from tests.server.support import LocalServer, local_server

WAIT = "queues.wait_for_tasks"


def default_queue(client: ApiClient) -> str:
    return str(client.call("queues.get_default").data["id"])


def enqueue_new_task(client: ApiClient, queue: str) -> str:
    task = str(client.call("tasks.create", {"name": "t", "type": "training"}).data["id"])
    assert client.call("tasks.enqueue", {"task": task, "queue": queue}).status == 200
    return task


def test_an_empty_queue_is_not_ready_when_the_timeout_passes(client: ApiClient) -> None:
    queue = default_queue(client)
    started = time.monotonic()
    reply = client.call(WAIT, {"queues": [queue], "timeout": 0.5})
    waited = time.monotonic() - started
    assert reply.status == 200 and reply.data == {"ready": False}
    assert 0.45 <= waited <= 0.5 + time_bound(2.0)


def test_a_waiting_task_is_ready_at_once(client: ApiClient) -> None:
    queue = default_queue(client)
    enqueue_new_task(client, queue)
    started = time.monotonic()
    assert client.call(WAIT, {"queues": [queue], "timeout": 20}).data == {"ready": True}
    assert client.call(WAIT, {"queues": ["default"], "timeout": 0}).data == {"ready": True}  # a name works
    assert time.monotonic() - started < time_bound(2.0)


def test_an_enqueue_by_another_client_ends_the_wait(server: LocalServer, client: ApiClient) -> None:
    queue = default_queue(client)
    other_queue = str(client.call("queues.create", {"name": "other"}).data["id"])
    replies: list[tuple[ApiReply, float]] = []
    waiting = server.client()

    def wait() -> None:
        reply = waiting.call(WAIT, {"queues": [other_queue, queue], "timeout": 20})
        replies.append((reply, time.monotonic()))

    waiter = threading.Thread(target=wait)
    waiter.start()
    time.sleep(0.3)  # let the call be held: an enqueue before it is seen at once anyway
    enqueuer = server.client()
    enqueue_new_task(enqueuer, queue)
    enqueued = time.monotonic()
    waiter.join(30)
    assert not waiter.is_alive(), "the wait did not end after the enqueue"
    reply, answered = replies[0]
    assert reply.data == {"ready": True}
    assert answered - enqueued < time_bound(1.0)  # far below the 20 s it was allowed
    assert client.call("queues.get_next_task", {"queue": queue}).data["entry"]
    waiting.close()
    enqueuer.close()


def test_unknown_queues_and_malformed_requests_are_clearmls_errors(client: ApiClient) -> None:
    queue = default_queue(client)
    assert client.call(WAIT, {"queues": ["nope"], "timeout": 1}).code == (400, 701)
    assert client.call(WAIT, {"queues": [queue, "nope"], "timeout": 1}).code == (400, 701)
    assert client.call(WAIT, {"timeout": 1}).code == (400, 11)
    assert client.call(WAIT, {"queues": [], "timeout": 1}).code == (400, 11)
    assert client.call(WAIT, {"queues": [7], "timeout": 1}).code == (400, 20)
    for bad in (-1, "5", True, None, [1]):
        reply = client.call(WAIT, {"queues": [queue], "timeout": bad})
        assert reply.status == 400 and reply.code == (400, 12), (bad, reply.message)
        assert "timeout" in reply.message


def test_the_timeout_is_capped(client: ApiClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(queues, "MAX_WAIT_SEC", 0.5)  # the in-process server reads it per call
    started = time.monotonic()
    reply = client.call(WAIT, {"queues": [default_queue(client)], "timeout": 3600})
    assert reply.data == {"ready": False}
    assert time.monotonic() - started < 0.5 + time_bound(2.0)


def test_it_needs_credentials(server: LocalServer) -> None:
    anonymous = server.client(login=False)
    assert anonymous.call(WAIT, {"queues": ["default"], "timeout": 0}).code == (401, 20)
    anonymous.close()


def test_sign_in_announces_it(server: LocalServer) -> None:
    client = server.client(login=False)
    reply = client.call("auth.login", headers=client.basic())
    assert reply.status == 200
    assert reply.data["clearml_core"] == {"extensions": ["queues.wait_for_tasks"]}
    client.close()


def test_turned_off_it_is_neither_announced_nor_served(tmp_path) -> None:
    with local_server(tmp_path / "server", wait_for_tasks=False) as server:
        client = server.client(login=False)
        assert client.call("auth.login", headers=client.basic()).data["clearml_core"] == {"extensions": []}
        client.login()
        refused = client.call(WAIT, {"queues": ["default"], "timeout": 0})
        assert refused.code == (400, 1) and "apiserver.clearml_core.wait_for_tasks" in refused.message
        client.close()


def test_a_stopping_server_ends_the_waits(tmp_path) -> None:
    replies: list[ApiReply] = []
    with local_server(tmp_path / "server") as server:
        waiting = server.client()  # signed in: its connection is open before the server stops

        def wait() -> None:
            replies.append(waiting.call(WAIT, {"queues": ["default"], "timeout": 25}))

        waiter = threading.Thread(target=wait)
        waiter.start()
        time.sleep(0.3)  # let the call be held (one that comes later is answered at once)
        stopping = time.monotonic()
    waiter.join(30)
    assert not waiter.is_alive()
    assert time.monotonic() - stopping < time_bound(5.0)
    assert replies[0].data == {"ready": False}
    waiting.close()
