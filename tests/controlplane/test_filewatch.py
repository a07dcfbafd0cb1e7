"""FileChanges: a write by another process wakes a waiter; without inotify the waiters stat."""

from __future__ import annotations

import multiprocessing
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from clearml_core.controlplane import filewatch
from clearml_core.controlplane.filewatch import FileChanges

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="inotify is Linux's")


@pytest.fixture(params=["inotify", "stat"])
def changes(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[FileChanges]:
    if request.param == "inotify" and not sys.platform.startswith("linux"):
        pytest.skip("inotify is Linux's")
    watched = FileChanges([tmp_path / "state.db", tmp_path / "state.db-wal"])
    watched._inotify_usable = request.param == "inotify"
    yield watched
    watched.close()


def _write_from_another_process(path: Path, delay: float) -> subprocess.Popen[bytes]:
    code = f"import time; time.sleep({delay}); open({str(path)!r}, 'ab').write(b'x')"
    return subprocess.Popen([sys.executable, "-c", code])


def test_a_write_by_another_process_ends_the_wait(changes: FileChanges, tmp_path: Path) -> None:
    with changes.watching() as seen:
        writer = _write_from_another_process(tmp_path / "state.db-wal", 0.3)
        began = time.monotonic()
        assert changes.wait(seen, 30) != seen
        assert time.monotonic() - began < 10
        writer.wait()


def test_other_files_of_the_folder_do_not_end_the_wait(changes: FileChanges, tmp_path: Path) -> None:
    with changes.watching() as seen:
        (tmp_path / "state.db-shm").write_bytes(b"x")
        (tmp_path / "other.txt").write_bytes(b"x")
        assert changes.wait(seen, 0.5) == seen


def test_the_wait_ends_at_its_timeout_and_on_cancel(changes: FileChanges) -> None:
    with changes.watching() as seen:
        began = time.monotonic()
        assert changes.wait(seen, 0.3) == seen
        assert 0.25 < time.monotonic() - began < 5
        cancel = threading.Event()
        threading.Timer(0.2, cancel.set).start()
        began = time.monotonic()
        assert changes.wait(seen, 60, cancel) == seen
        assert time.monotonic() - began < 0.2 + filewatch.CANCEL_CHECK_SEC + 2


@linux_only
def test_the_inotify_thread_runs_only_while_someone_waits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(filewatch, "LINGER_SEC", 0.2)
    watched = FileChanges([tmp_path / "state.db"])
    try:
        assert not watched.uses_inotify
        with watched.watching():
            assert watched.uses_inotify

        def watching() -> bool:
            return watched.uses_inotify or any(t.name == "sqlite-file-watch" for t in threading.enumerate())

        deadline = time.monotonic() + 10
        while watching() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not watching(), "the inotify thread stayed after the last waiter"
    finally:
        watched.close()


@linux_only
def test_a_folder_that_goes_away_falls_back_to_stat(tmp_path: Path) -> None:
    folder = tmp_path / "state"
    folder.mkdir()
    watched = FileChanges([folder / "state.db"])
    try:
        with watched.watching() as seen:
            assert watched.uses_inotify
            folder.rmdir()
            seen = watched.wait(seen, 10)  # the watch ended: one wake-up, then the waiters stat
            assert not watched.uses_inotify
            folder.mkdir()
            writer = _write_from_another_process(folder / "state.db", 0.2)
            assert watched.wait(seen, 30) != seen
            writer.wait()
    finally:
        watched.close()


def _wait_in_child(changes: FileChanges, path: Path, result: Any) -> None:
    with changes.watching() as seen:
        _write_from_another_process(path, 0.3).wait()
        result.value = int(changes.wait(seen, 20) != seen)


@linux_only
def test_a_forked_child_watches_on_its_own(tmp_path: Path) -> None:
    """The parent's inotify thread does not exist in a child forked while it waits."""
    watched = FileChanges([tmp_path / "state.db"])
    context = multiprocessing.get_context("fork")
    result = context.Value("i", -1)
    try:
        with watched.watching():
            assert watched.uses_inotify
            child = context.Process(target=_wait_in_child, args=(watched, tmp_path / "state.db", result))
            child.start()
            child.join(60)
        assert child.exitcode == 0
        assert result.value == 1, "the child did not see the write"
    finally:
        watched.close()
