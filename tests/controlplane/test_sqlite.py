"""What is particular to the SQLite file: URLs, the default location, migrations, bad files."""

from __future__ import annotations

import multiprocessing
import os
import sqlite3
from pathlib import Path

import pytest

from clearml_core.controlplane import (
    DEFAULT_CONTROL_PLANE,
    ControlPlaneError,
    Task,
    TaskStatus,
    open_control_plane,
)
from clearml_core.controlplane import sqlite as sqlite_plane
from clearml_core.controlplane.sqlite import SCHEMA_VERSION, SQLiteControlPlane, path_from_url
from clearml_core.errors import UserError


def test_urls(tmp_path: Path, clearml_home: Path) -> None:
    assert (
        path_from_url("sqlite:///~/.clearml-core/state.db")[0] == clearml_home / ".clearml-core" / "state.db"
    )
    assert path_from_url(f"sqlite:///{tmp_path}/a.db")[0] == tmp_path / "a.db"
    assert path_from_url("sqlite:////abs/state.db")[0] == Path("/abs/state.db")
    assert path_from_url("sqlite:///rel/state.db")[0] == Path.cwd() / "rel" / "state.db"
    assert path_from_url("sqlite:///x.db?timeout=2.5")[1] == {"timeout": "2.5"}
    for bad in ("sqlite://", "sqlite:///", "sqlite:///:memory:"):
        with pytest.raises(ControlPlaneError, match="names no file"):
            path_from_url(bad)


def test_default_location_is_created_in_the_home_folder(clearml_home: Path) -> None:
    assert not (clearml_home / ".clearml-core").exists()
    plane = open_control_plane()
    assert isinstance(plane, SQLiteControlPlane)
    assert plane.path == clearml_home / ".clearml-core" / "state.db"
    assert plane.path.is_file()
    assert DEFAULT_CONTROL_PLANE.startswith("sqlite:///~")


def test_configured_location(clearml_conf: Path, tmp_path: Path) -> None:
    target = tmp_path / "deep" / "er" / "cp.db"
    clearml_conf.write_text(f'agent {{ control_plane: "sqlite:///{target}?timeout=3" }}\n', encoding="utf-8")
    plane = open_control_plane()
    assert isinstance(plane, SQLiteControlPlane)
    assert (plane.path, plane.timeout) == (target, 3.0)
    assert target.is_file()


def test_a_scheme_nobody_serves(clearml_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from clearml_core.plugins import reset_registry

    monkeypatch.setenv("CLEARML_CORE_DISABLE_PLUGINS", "controlplane_redis")  # as if not installed
    reset_registry()
    with pytest.raises(UserError, match=r"clearml-core\[redis\]"):
        open_control_plane("redis://localhost:6379/0")
    with pytest.raises(UserError, match="sqlite"):
        open_control_plane("mongodb://x")
    with pytest.raises(UserError, match="no scheme"):
        open_control_plane("/tmp/state.db")


def test_wal_and_schema_version(tmp_path: Path) -> None:
    plane = SQLiteControlPlane(tmp_path / "s.db")
    assert plane.schema_version() == SCHEMA_VERSION
    with sqlite3.connect(tmp_path / "s.db") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("SELECT version FROM schema_version").fetchone()[0] == SCHEMA_VERSION


def test_a_forward_migration_runs_once_and_keeps_the_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "s.db"
    task = SQLiteControlPlane(path).create_task(Task(name="before"))
    calls = []

    def v2(conn: sqlite3.Connection, now: float) -> None:
        calls.append(now)
        conn.execute("ALTER TABLE tasks ADD COLUMN priority INTEGER NOT NULL DEFAULT 0")

    monkeypatch.setattr(sqlite_plane, "MIGRATIONS", [*sqlite_plane.MIGRATIONS, v2])
    monkeypatch.setattr(sqlite_plane, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    upgraded = SQLiteControlPlane(path)
    assert upgraded.schema_version() == SCHEMA_VERSION + 1
    assert upgraded.get_task(task.id).name == "before"
    SQLiteControlPlane(path)
    assert len(calls) == 1
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT priority FROM tasks").fetchall() == [(0,)]


def test_a_file_from_a_newer_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    SQLiteControlPlane(path).create_task(Task(name="kept"))
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE schema_version SET version = 99")
    with pytest.raises(ControlPlaneError, match=r"schema version 99.*upgrade clearml-core") as info:
        SQLiteControlPlane(path)
    assert str(path) in str(info.value)
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT name FROM tasks").fetchall() == [("kept",)]


def test_a_file_that_is_not_a_database_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    garbage = b"these are my notes, not a database\n" * 200
    path.write_bytes(garbage)
    with pytest.raises(ControlPlaneError, match="damaged") as info:
        open_control_plane(f"sqlite:///{path}")
    assert str(path) in str(info.value)
    assert "left untouched" in str(info.value)
    assert path.read_bytes() == garbage


def test_a_corrupt_database_is_reported_not_replaced(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    plane = SQLiteControlPlane(path)
    for i in range(300):
        plane.create_task(Task(name=f"task {i}" * 20))
    plane.close()
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    data = bytearray(path.read_bytes())
    page = 4096
    for offset in range(2 * page, len(data) - page, page):
        data[offset : offset + 64] = b"\xff" * 64  # smash every b-tree page header after the schema
    path.write_bytes(bytes(data))
    damaged = bytes(data)
    with pytest.raises(ControlPlaneError, match="damaged") as info:
        SQLiteControlPlane(path).list_tasks()
    assert str(path) in str(info.value)
    assert "recover" in str(info.value)
    assert path.read_bytes() == damaged


def test_a_database_of_another_program_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE invoices (id INTEGER)")
        conn.execute("INSERT INTO invoices VALUES (1)")
    with pytest.raises(ControlPlaneError, match="another program"):
        SQLiteControlPlane(path)
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall() == [
            ("invoices",)
        ]
        assert conn.execute("SELECT id FROM invoices").fetchall() == [(1,)]


def test_a_locked_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    plane = SQLiteControlPlane(path, timeout=0.2)
    task = plane.create_task(Task(name="x"))
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(ControlPlaneError, match="locked") as info:
            plane.enqueue(task.id, "default")
        assert str(path) in str(info.value)
        assert "timeout=" in str(info.value)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert plane.enqueue(task.id, "default").status == TaskStatus.QUEUED


def test_a_directory_is_not_a_control_plane_file(tmp_path: Path) -> None:
    with pytest.raises(ControlPlaneError, match="is a directory"):
        SQLiteControlPlane(tmp_path)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every file")
def test_an_unreadable_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    SQLiteControlPlane(path).create_task(Task(name="x"))
    path.chmod(0)
    try:
        with pytest.raises(ControlPlaneError, match="permission denied"):
            SQLiteControlPlane(path)
    finally:
        path.chmod(0o600)


def _pop_in_child(plane: SQLiteControlPlane, results: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    task = plane.pop(["default"], "child")
    results.put(task.id if task else None)


def test_a_forked_child_uses_its_own_connection(tmp_path: Path) -> None:
    plane = SQLiteControlPlane(tmp_path / "s.db")
    first = plane.enqueue(plane.create_task(Task(name="a")).id, "default")
    second = plane.enqueue(plane.create_task(Task(name="b")).id, "default")
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    child = context.Process(target=_pop_in_child, args=(plane, results))
    child.start()
    assert results.get(timeout=60) == first.id
    child.join(timeout=60)
    assert child.exitcode == 0
    popped = plane.pop(["default"], "parent")  # the parent's connection still works
    assert popped is not None
    assert popped.id == second.id
    assert plane.get_task(first.id).worker == "child"


def test_a_folder_that_cannot_be_made_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x", encoding="utf-8")
    with pytest.raises(ControlPlaneError, match="cannot create the folder"):
        SQLiteControlPlane(blocker / "sub" / "state.db")
    assert blocker.read_text(encoding="utf-8") == "x"


def test_pop_skips_an_entry_whose_task_is_gone(tmp_path: Path) -> None:
    plane = SQLiteControlPlane(tmp_path / "s.db")
    real = plane.enqueue(plane.create_task(Task(name="real")).id, "default")
    with sqlite3.connect(tmp_path / "s.db") as conn:
        conn.execute("INSERT INTO queue_entries (task_id, queue, position) VALUES ('ghost', 'default', -5)")
    popped = plane.pop(["default"], "w")
    assert popped is not None
    assert popped.id == real.id
    assert plane.get_queue("default").tasks == []
