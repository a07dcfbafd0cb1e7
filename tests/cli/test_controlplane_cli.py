"""``clearml-core controlplane migrate`` between two embedded stores, in subprocesses."""

from __future__ import annotations

import json
from pathlib import Path

from clearml_core.controlplane import Script, Task, TaskStatus
from clearml_core.controlplane.sqlite import SQLiteControlPlane
from tests.helpers import run_cli


def _source(path: Path) -> tuple[SQLiteControlPlane, dict[str, str]]:
    plane = SQLiteControlPlane(path)
    plane.create_queue("gpu", tags=["force_workers:on"])
    made = {}
    for name in ("draft", "first", "second", "urgent", "ran", "running"):
        made[name] = plane.create_task(Task(name=name, script=Script(folder="/src", entry_point="a.py"))).id
    plane.enqueue(made["first"], "gpu")
    plane.enqueue(made["second"], "gpu")
    plane.enqueue(made["urgent"], "gpu", front=True)
    plane.start(made["ran"], "w1")
    plane.set_status(made["ran"], TaskStatus.COMPLETED, exit_code=0)
    plane.start(made["running"], "w1")
    return plane, made


def test_migrate_copies_queues_and_waiting_tasks_once(tmp_path: Path) -> None:
    source, made = _source(tmp_path / "from.db")
    origin, destination = f"sqlite:///{tmp_path / 'from.db'}", f"sqlite:///{tmp_path / 'to.db'}"

    result = run_cli("controlplane", "migrate", "--from", origin, "--to", destination, "--json")
    assert result.code == 0, result.text
    report = json.loads(result.out)
    assert report["queues"] == {"created": ["gpu"], "existing": ["default"]}
    assert sorted(report["tasks"]["copied"]) == sorted(
        made[n] for n in ("draft", "first", "second", "urgent")
    )
    assert report["tasks"]["left_behind"] == {"completed": 1, "in_progress": 1}

    target = SQLiteControlPlane(tmp_path / "to.db")
    gpu = target.get_queue("gpu")
    assert gpu.tasks == [made["urgent"], made["first"], made["second"]]  # the source's order
    assert gpu.tags == ["force_workers:on"]
    assert target.get_task(made["draft"]).status == TaskStatus.CREATED
    assert target.get_task(made["first"]).script == source.get_task(made["first"]).script
    for name in ("ran", "running"):
        assert [t.id for t in target.list_tasks() if t.id == made[name]] == []
    assert source.get_task(made["first"]).status == TaskStatus.QUEUED  # the source is only read

    # a run stopped half way (a task copied but not enqueued) is finished by the next run
    target.dequeue(made["second"])
    again = run_cli("controlplane", "migrate", "--from", origin, "--to", destination, "--json")
    assert again.code == 0, again.text
    second = json.loads(again.out)
    assert second["tasks"]["copied"] == []
    assert second["tasks"]["enqueued"] == [made["second"]]
    assert target.get_queue("gpu").tasks == [made["urgent"], made["first"], made["second"]]
    assert len(target.list_tasks()) == 4

    text = run_cli("controlplane", "migrate", "--from", origin, "--to", destination)
    assert text.code == 0, text.text
    assert "0 copied (0 enqueued), 4 already there" in text.out


def test_bad_urls_write_nothing(tmp_path: Path) -> None:
    source, _made = _source(tmp_path / "from.db")
    before = [t.to_dict() for t in source.list_tasks()]
    origin = f"sqlite:///{tmp_path / 'from.db'}"
    for target in ("mongodb://nowhere/x", f"sqlite:///{tmp_path}"):
        result = run_cli("controlplane", "migrate", "--from", origin, "--to", target)
        assert result.code == 2, result.text
        assert result.err.startswith("error: ") and result.err.count("\n") == 1, result.err
    same = run_cli("controlplane", "migrate", "--from", origin, "--to", origin)
    assert same.code == 2 and "same control plane" in same.err
    assert [t.to_dict() for t in source.list_tasks()] == before
