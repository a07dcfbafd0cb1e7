"""clearml_core.sqlite_connections: one connection per thread and per process, for shared files."""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading
from pathlib import Path

import pytest

from clearml_core.sqlite_connections import ThreadConnections


def _in_thread(connections: ThreadConnections) -> sqlite3.Connection:
    found: list[sqlite3.Connection] = []
    thread = threading.Thread(target=lambda: found.append(connections.get()))
    thread.start()
    thread.join(30)
    return found[0]


def test_each_thread_has_its_own_connection_set_up_for_sharing(tmp_path: Path) -> None:
    connections = ThreadConnections(tmp_path / "state.db", timeout=5)
    mine = connections.get()
    assert connections.get() is mine
    assert _in_thread(connections) is not mine
    assert mine.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert mine.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    assert mine.isolation_level is None  # autocommit: callers say BEGIN
    assert mine.execute("PRAGMA busy_timeout").fetchone()[0] == 5000


def test_the_connection_of_an_ended_thread_is_closed_by_the_next_one(tmp_path: Path) -> None:
    connections = ThreadConnections(tmp_path / "state.db", timeout=5, synchronous="OFF")
    ended = _in_thread(connections)
    ended.execute("SELECT 1")
    _in_thread(connections)
    with pytest.raises(sqlite3.ProgrammingError, match="closed"):
        ended.execute("SELECT 1")


def test_discard_and_close(tmp_path: Path) -> None:
    connections = ThreadConnections(tmp_path / "state.db", timeout=5)
    first = connections.get()
    connections.discard()
    assert connections.current() is None
    with pytest.raises(sqlite3.ProgrammingError):
        first.execute("SELECT 1")
    other = _in_thread(connections)
    connections.close()
    with pytest.raises(sqlite3.ProgrammingError):
        other.execute("SELECT 1")


def _child(connections: ThreadConnections, parents: int, results: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    conn = connections.get()
    conn.execute("INSERT INTO t VALUES ('child')")
    connections.close()  # closes the child's own; the parent's stays open
    results.put(id(conn) != parents)


def test_a_forked_child_opens_its_own_and_leaves_the_parents_open(tmp_path: Path) -> None:
    connections = ThreadConnections(tmp_path / "state.db", timeout=5)
    parent = connections.get()
    parent.execute("CREATE TABLE t (who TEXT)")
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    child = context.Process(target=_child, args=(connections, id(parent), results))
    child.start()
    assert results.get(timeout=60) is True
    child.join(timeout=60)
    assert child.exitcode == 0
    parent.execute("INSERT INTO t VALUES ('parent')")
    assert sorted(row[0] for row in parent.execute("SELECT who FROM t")) == ["child", "parent"]


def test_a_new_file_another_process_is_writing_is_switched_to_wal_once_it_may(tmp_path: Path) -> None:
    # Processes opening a new file together: while one writes in the rollback journal, SQLite
    # refuses the switch to WAL at once ("database is locked"), without its busy timeout.
    path = tmp_path / "index.db"
    writer = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    writer.execute("CREATE TABLE t (x)")
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("INSERT INTO t VALUES (1)")
    opened: list[sqlite3.Connection] = []
    waiting = threading.Thread(target=lambda: opened.append(ThreadConnections(path, timeout=30).get()))
    waiting.start()
    waiting.join(0.2)
    assert waiting.is_alive() and not opened  # waits for the writer instead of failing
    writer.execute("COMMIT")
    waiting.join(30)
    assert opened and opened[0].execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    writer.close()
