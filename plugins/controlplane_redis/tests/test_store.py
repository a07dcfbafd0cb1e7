"""What only the Redis plane does, against a real redis-server: key prefixes, records it cannot read,
the watchdog lease, bounded logs, retried pops and reports that must not count twice, and reports
held across a Redis restart."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from clearml_core_controlplane_redis.plane import RedisControlPlane
from clearml_core_controlplane_redis.records import SCHEMA_VERSION
from clearml_core_controlplane_redis.settings import RedisSettings, parse_url

from clearml_core.controlplane import (
    DEFAULT_QUEUE,
    ControlPlaneError,
    Script,
    Task,
    TaskStatus,
    open_control_plane,
)
from plugins.controlplane_redis.tests.support import RedisServer, fresh_prefix


def _plane(server: RedisServer, prefix: str, **settings: object) -> RedisControlPlane:
    return RedisControlPlane(parse_url(server.url(prefix)), RedisSettings(**settings))  # type: ignore[arg-type]


@pytest.fixture
def plane(redis_server: RedisServer, prefix: str) -> Iterator[RedisControlPlane]:
    opened = _plane(redis_server, prefix)
    yield opened
    opened.close()


def _task(plane: RedisControlPlane, name: str = "t", queue: str | None = DEFAULT_QUEUE) -> Task:
    task = plane.create_task(Task(name=name, script=Script(folder="/src", entry_point="a.py")))
    return plane.enqueue(task.id, queue) if queue else task


def test_the_prefix_keeps_deployments_and_other_programs_apart(redis_server: RedisServer) -> None:
    client = redis_server.client()
    client.set("someone-else:config", "theirs")
    client.hset("someone-else:queues", "default", "not json")
    team_a = open_control_plane(redis_server.url(fresh_prefix("team-a")))
    team_b = open_control_plane(redis_server.url(fresh_prefix("team-b")))
    team_a.create_queue("gpu")
    task = team_a.enqueue(team_a.create_task(Task(name="a-only")).id, "gpu")
    assert [q.name for q in team_b.list_queues()] == [DEFAULT_QUEUE]
    assert team_b.list_tasks() == []
    assert team_b.pop(["gpu", DEFAULT_QUEUE], "w") is None
    assert team_a.pop(["gpu"], "w") == team_a.get_task(task.id)
    prefix_a = team_a.url.split("prefix=")[1]
    assert all(key.startswith(f"{prefix_a}:") for key in client.scan_iter(match=f"{prefix_a}*"))
    assert client.get("someone-else:config") == "theirs"
    assert client.hget("someone-else:queues", "default") == "not json"


def test_a_key_of_the_wrong_type_under_the_prefix_is_refused_and_left_alone(
    redis_server: RedisServer, prefix: str
) -> None:
    client = redis_server.client()
    client.set(f"{prefix}:queues", "a string of another program")
    with pytest.raises(ControlPlaneError, match=rf"'{prefix}:queues' .* is a string, not the hash") as raised:
        open_control_plane(redis_server.url(prefix))
    assert "?prefix=NAME" in str(raised.value)
    assert sorted(client.scan_iter(match=f"{prefix}:*")) == [f"{prefix}:queues"]  # nothing written
    assert client.get(f"{prefix}:queues") == "a string of another program"


def test_a_wrong_type_found_later_is_a_clear_error(
    plane: RedisControlPlane, redis_server: RedisServer
) -> None:
    redis_server.client().set(f"{plane.keys.prefix}:queue:gpu", "not a sorted set")
    plane.create_queue("gpu")
    with pytest.raises(ControlPlaneError, match="WRONGTYPE.*another program uses this prefix"):
        plane.get_queue("gpu")


def test_records_of_a_newer_version_are_refused(plane: RedisControlPlane, redis_server: RedisServer) -> None:
    task = _task(plane)
    client = redis_server.client()
    client.hset(plane.keys.task(task.id), "schema", SCHEMA_VERSION + 1)
    with pytest.raises(ControlPlaneError, match="newer clearml-core Redis plugin.*upgrade"):
        plane.get_task(task.id)
    client.hset(plane.keys.meta, "schema", SCHEMA_VERSION + 1)
    with pytest.raises(ControlPlaneError, match="schema version 2, written by a newer"):
        open_control_plane(plane.url)
    client.hset(plane.keys.task(task.id), "doc", "{not json")
    client.hset(plane.keys.task(task.id), "schema", SCHEMA_VERSION)
    with pytest.raises(ControlPlaneError, match=f"record of task {task.id} is not one clearml-core can read"):
        plane.get_task(task.id)


def test_one_watchdog_holds_the_lease_until_it_lapses(plane: RedisControlPlane) -> None:
    other = open_control_plane(plane.url)
    assert plane.claim_lease("watchdog", 60) is True
    assert other.claim_lease("watchdog", 60) is False
    assert plane.claim_lease("watchdog", 0.2) is True  # the holder renews, here for a short while
    import time

    deadline = time.monotonic() + 30
    while not other.claim_lease("watchdog", 60):
        assert time.monotonic() < deadline, "the lease never lapsed"
        time.sleep(0.05)
    assert plane.claim_lease("watchdog", 60) is False


def test_no_watchdog_right_after_an_outage(durable_redis: RedisServer) -> None:
    plane = _plane(durable_redis, "outage")
    assert plane.claim_lease("watchdog", 0.5) is True
    durable_redis.stop()
    with pytest.raises(ControlPlaneError, match="cannot reach"):
        plane.list_queues()
    durable_redis.start()
    assert wait_until(lambda: _reachable(plane), 30)
    # the workers have not reported since Redis came back: their silence means nothing yet
    assert plane.claim_lease("watchdog", 60) is False
    assert wait_until(lambda: plane.claim_lease("watchdog", 0.5), 30)


def _reachable(plane: RedisControlPlane) -> bool:
    try:
        plane.list_queues()
    except ControlPlaneError:
        return False
    return True


def wait_until(predicate, timeout: float) -> bool:  # type: ignore[no-untyped-def]
    import time

    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_logs_are_bounded(redis_server: RedisServer, prefix: str) -> None:
    plane = _plane(redis_server, prefix, max_log_lines=10)
    task = _task(plane, queue=None)
    for batch in range(6):
        plane.append_logs(task.id, [f"{batch}.{line}" for line in range(3)])
    events = plane.read_logs(task.id)
    assert [e.seq for e in events] == [4, 5, 6]  # 9 lines kept: adding a 4th batch would pass 10
    assert events[0].lines == ["3.0", "3.1", "3.2"]
    assert [e.seq for e in plane.read_logs(task.id, after=4)] == [5, 6]
    plane.append_logs(task.id, [f"big {n}" for n in range(25)])  # one batch over the bound stays whole
    assert [len(e.lines) for e in plane.read_logs(task.id)] == [25]


def test_a_retried_pop_hands_back_the_task_it_took(plane: RedisControlPlane) -> None:
    first, second = _task(plane, "first"), _task(plane, "second")
    args = [plane.keys.base, "w1", json.dumps("w1"), json.dumps(1.5), "token-1", 1, DEFAULT_QUEUE, "doc"]
    took = plane._scripts["pop"](args=args)
    again = plane._scripts["pop"](args=args)  # the same call, as redis-py resends it after a lost reply
    assert took[0] == again[0] == first.id
    assert plane.get_queue(DEFAULT_QUEUE).tasks == [second.id]


def test_a_report_delivered_twice_counts_once(plane: RedisControlPlane) -> None:
    task = _task(plane)
    popped = plane.pop([DEFAULT_QUEUE], "w1")
    assert popped is not None
    batch = json.dumps([1.0, "stdout", ["only once"]])
    assert plane._append(task.id, batch, 1, 7) == 1
    assert plane._append(task.id, batch, 1, 7) == 0  # the reply was lost: the outbox sends it again
    assert [e.lines for e in plane.read_logs(task.id)] == [["only once"]]
    done = plane._set_status(task.id, TaskStatus.COMPLETED, None, 0, None, "w1", 8)
    again = plane._set_status(task.id, TaskStatus.COMPLETED, None, 0, None, "w1", 8)
    assert done.status == again.status == TaskStatus.COMPLETED
    assert again.ended == done.ended


def test_reports_of_a_running_task_wait_for_redis_and_arrive_once(durable_redis: RedisServer) -> None:
    daemon_side = _plane(durable_redis, "fleet", flush_timeout_sec=60)
    task = _task(daemon_side)
    popped = daemon_side.pop([DEFAULT_QUEUE], "w1")
    assert popped is not None and popped.id == task.id
    assert daemon_side.append_logs(task.id, ["before"]) == 1

    durable_redis.stop()
    # the task keeps running and reporting; nothing raises, nothing is lost
    assert daemon_side.append_logs(task.id, ["while away 1"]) == 0
    daemon_side.update_task(task.id, runtime={"step": 2})
    assert daemon_side.append_logs(task.id, ["while away 2"], stream="stderr") == 0
    ended = daemon_side.set_status(task.id, TaskStatus.COMPLETED, exit_code=0, expected_worker="w1")
    assert ended.status == TaskStatus.COMPLETED  # as it will be recorded
    with pytest.raises(ControlPlaneError, match="cannot reach the Redis control plane"):
        daemon_side.get_task(task.id)

    durable_redis.start()
    daemon_side.close()  # delivers what waits (a daemon does it on exit)
    reader = _plane(durable_redis, "fleet")
    record = reader.get_task(task.id)
    assert (record.status, record.exit_code, record.runtime) == (TaskStatus.COMPLETED, 0, {"step": 2})
    lines = [(e.seq, e.stream, e.lines) for e in reader.read_logs(task.id)]
    assert lines == [
        (1, "stdout", ["before"]),
        (2, "stdout", ["while away 1"]),
        (3, "stderr", ["while away 2"]),
    ]
    assert record.last_log_lines == ["before", "while away 1", "while away 2"]


def test_held_log_lines_are_bounded(durable_redis: RedisServer, caplog: pytest.LogCaptureFixture) -> None:
    plane = _plane(durable_redis, "bounded", buffer_max_lines=5, flush_timeout_sec=60)
    task = _task(plane)
    assert plane.pop([DEFAULT_QUEUE], "w1") is not None
    durable_redis.stop()
    for batch in range(4):
        plane.append_logs(task.id, [f"{batch}.a", f"{batch}.b"])
    plane.set_status(task.id, TaskStatus.FAILED, exit_code=1, expected_worker="w1")
    assert "dropping the oldest" in caplog.text
    durable_redis.start()
    plane.close()
    reader = _plane(durable_redis, "bounded")
    assert [e.lines for e in reader.read_logs(task.id)] == [["2.a", "2.b"], ["3.a", "3.b"]]
    assert reader.get_task(task.id).status == TaskStatus.FAILED  # a status is never dropped


def test_unreachable_redis_fails_fast_with_one_clear_message(tmp_path: Path) -> None:
    from clearml_core.testing.servers import free_port

    url = f"redis://:never-shown-pw@127.0.0.1:{free_port()}/0"
    with pytest.raises(ControlPlaneError) as raised:
        open_control_plane(url)
    message = str(raised.value)
    assert message.startswith("cannot reach the Redis control plane at redis://127.0.0.1:")
    assert "Connection refused" in message and "never-shown-pw" not in message
