"""clearml_core.filelocks: the locks the storage, VCS and environment caches take."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from clearml_core.filelocks import ByteRangeLock, ExclusiveFileLock, SharedFileLock, byte_range_locks


def test_shared_holders_share_and_keep_exclusive_out(tmp_path: Path) -> None:
    path = tmp_path / "locks" / "entry.lock"  # the folder is made on first use
    first, second, writer = SharedFileLock(path), SharedFileLock(path), SharedFileLock(path)
    assert first.acquire(exclusive=False) and second.acquire(exclusive=False)
    assert not writer.acquire(exclusive=True, blocking=False)
    first.release()
    second.release()
    assert writer.acquire(exclusive=True, blocking=False) and writer.fd is not None
    assert not first.acquire(exclusive=False, blocking=False)
    writer.share()  # what a builder does once the entry is complete
    assert first.acquire(exclusive=False, blocking=False)
    writer.release()
    first.release()
    assert writer.fd is None


def test_a_wait_asks_whether_to_stop(tmp_path: Path) -> None:
    path = tmp_path / "mirror.lock"
    holder = SharedFileLock(path)
    holder.acquire(exclusive=True)

    class Stopped(Exception):
        pass

    def stop() -> None:
        raise Stopped

    with pytest.raises(Stopped):
        SharedFileLock(path, check_stop=stop).acquire(exclusive=False)
    holder.release()


def test_a_lock_file_deleted_while_waiting_is_never_held_twice(tmp_path: Path) -> None:
    path = tmp_path / "entry.lock"
    holder = SharedFileLock(path)
    holder.acquire(exclusive=True)
    waiting = threading.Event()
    waiter = SharedFileLock(path, check_stop=waiting.set)
    done = threading.Thread(target=lambda: waiter.acquire(exclusive=True))
    done.start()
    assert waiting.wait(30)
    os.unlink(path)  # an evictor deletes the file the waiter has open
    holder.release()
    done.join(30)
    assert waiter.fd is not None and os.fstat(waiter.fd).st_ino == os.stat(path).st_ino
    assert not SharedFileLock(path).acquire(exclusive=False, blocking=False)
    waiter.release()


def test_exclusive_file_lock(tmp_path: Path) -> None:
    first, second = (
        ExclusiveFileLock(tmp_path / "a" / "index.lock"),
        ExclusiveFileLock(tmp_path / "a" / "index.lock"),
    )
    with first:
        assert not second.acquire(blocking=False)
    assert second.acquire(blocking=False)
    second.release()


@pytest.mark.skipif(not byte_range_locks(), reason="no open-file-description locks on this system")
def test_byte_range_locks_lock_one_byte_of_one_file(tmp_path: Path) -> None:
    path = tmp_path / ".locks" / "entries.lock"
    first = ByteRangeLock(path, 7)
    assert first.acquire(blocking=False)
    assert not ByteRangeLock(path, 7).acquire(blocking=False)
    other = ByteRangeLock(path, 8)
    assert other.acquire(blocking=False)
    other.release()
    first.release()
    again = ByteRangeLock(path, 7)
    assert again.acquire(blocking=False)
    again.release()
    assert sorted(p.name for p in path.parent.iterdir()) == ["entries.lock"]
