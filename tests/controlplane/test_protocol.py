"""The records and rules of the control-plane protocol, independent of any store."""

from __future__ import annotations

from pathlib import Path

import pytest

from clearml_core.controlplane import (
    FINAL_STATUSES,
    RuntimeProperty,
    Script,
    Task,
    TaskStatus,
    Worker,
)
from clearml_core.controlplane.records import TRANSITIONS, LogEvent, Queue, as_status
from clearml_core.controlplane.watchdog import WatchdogSettings
from clearml_core.errors import UserError


def test_task_round_trips_through_json_types() -> None:
    import json

    task = Task(
        id="abc",
        name="n",
        status=TaskStatus.IN_PROGRESS,
        script=Script(repository="https://h/r.git", entry_point="a.py"),
        runtime={"gpus": [0, 1]},
    )
    data = json.loads(json.dumps(task.to_dict()))
    assert data["status"] == "in_progress"
    assert Task.from_dict(data) == task


def test_old_and_new_documents_still_load() -> None:
    task = Task.from_dict({"id": "x", "name": "n", "status": "queued", "field_from_the_future": 1})
    assert (task.id, task.status, task.script) == ("x", TaskStatus.QUEUED, Script())


def test_statuses() -> None:
    assert str(TaskStatus.IN_PROGRESS) == "in_progress"
    assert TaskStatus.IN_PROGRESS == "in_progress"
    assert {s for s in TaskStatus if s.is_final} == set(FINAL_STATUSES)
    assert all(not TRANSITIONS[s] for s in FINAL_STATUSES)
    assert as_status("failed") is TaskStatus.FAILED
    with pytest.raises(UserError, match="in_progress"):
        as_status("running")


def test_runtime_properties_and_worker_round_trip() -> None:
    worker = Worker(id="w", runtime_properties={"force": RuntimeProperty("on", expires=100.0)}, tasks=["t"])
    assert worker.runtime_value("force", 99.9) == "on"
    assert worker.runtime_value("force", 100.0) is None
    assert worker.runtime_value("other", 0) is None
    assert worker.task == "t"
    assert Worker.from_dict(worker.to_dict()) == worker
    assert RuntimeProperty("off").active(10**12)


def test_queue_and_log_records() -> None:
    queue = Queue(name="q", tasks=["a"], tags=["force_workers:on"])
    assert Queue.from_dict(queue.to_dict()) == queue
    event = LogEvent("t", 3, 1.5, "stderr", ["x"])
    assert LogEvent.from_dict(event.to_dict()) == event


def test_watchdog_settings(clearml_conf: Path) -> None:
    assert WatchdogSettings.from_config() == WatchdogSettings(7200, 900, False)
    clearml_conf.write_text(
        "agent.watchdog { threshold_sec: 600, watch_interval_sec: 60, requeue: true }\n", encoding="utf-8"
    )
    from clearml_core.settings import reset_config

    reset_config()
    assert WatchdogSettings.from_config() == WatchdogSettings(600, 60, True)


def test_clearml_server_redis_variables_select_redis_unless_configured(clearml_conf: Path) -> None:
    from clearml_core.controlplane import DEFAULT_CONTROL_PLANE, control_plane_url
    from clearml_core.settings import load_config

    server = {"CLEARML_REDIS_SERVICE_HOST": "redis.internal", "CLEARML_REDIS_SERVICE_PORT": "6380"}
    defaults_only = load_config(clearml_conf, environ={})
    assert control_plane_url(defaults_only, environ={}) == DEFAULT_CONTROL_PLANE
    assert control_plane_url(defaults_only, environ=server) == "redis://redis.internal:6380/0"
    host_only = {"CLEARML_REDIS_SERVICE_HOST": "redis.internal"}
    assert control_plane_url(defaults_only, environ=host_only) == "redis://redis.internal:6379/0"
    # an explicit agent.control_plane wins, whether it names SQLite or another Redis
    clearml_conf.write_text('agent.control_plane: "sqlite:////srv/cp.db"\n', encoding="utf-8")
    assert control_plane_url(load_config(clearml_conf, environ={}), environ=server) == "sqlite:////srv/cp.db"
    overridden = load_config(clearml_conf, environ={"CLEARML__AGENT__CONTROL_PLANE": "redis://other:1/2"})
    assert control_plane_url(overridden, environ=server) == "redis://other:1/2"


def test_a_clearml_api_server_is_the_control_plane_unless_one_is_configured(clearml_conf: Path) -> None:
    from clearml_core.controlplane import (
        DEFAULT_CONTROL_PLANE,
        control_plane_origin,
        control_plane_url,
    )
    from clearml_core.settings import load_config

    redis = {"CLEARML_REDIS_SERVICE_HOST": "redis.internal"}
    clearml_conf.write_text('api.api_server: "https://api.example.com/"\n', encoding="utf-8")
    from_file = load_config(clearml_conf, environ={})
    assert control_plane_url(from_file, environ=redis) == "clearml+https://api.example.com"
    assert (
        control_plane_origin(from_file, "clearml+https://api.example.com")
        == f"api.api_server, {clearml_conf}:1"
    )
    # the server itself keeps its tasks in a store, whatever its machine's clearml.conf says
    assert control_plane_url(from_file, environ={}, api_server=False) == DEFAULT_CONTROL_PLANE
    assert control_plane_url(from_file, environ=redis, api_server=False) == "redis://redis.internal:6379/0"

    clearml_conf.write_text("", encoding="utf-8")
    from_env = load_config(clearml_conf, environ={"CLEARML_API_HOST": "http://10.0.0.5:8008"})
    assert control_plane_url(from_env, environ={}) == "clearml+http://10.0.0.5:8008"

    clearml_conf.write_text(
        'api.api_server: "https://api.example.com"\nagent.control_plane: "sqlite:////srv/cp.db"\n',
        encoding="utf-8",
    )
    explicit = load_config(clearml_conf, environ={})
    assert control_plane_url(explicit, environ={}) == "sqlite:////srv/cp.db"
    assert control_plane_origin(explicit, "sqlite:////srv/cp.db") == f"agent.control_plane, {clearml_conf}:2"
