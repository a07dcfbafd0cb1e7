"""The download cache: locking with real processes, kill -9 safety, LRU and size limits, the index."""

from __future__ import annotations

import itertools
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from clearml_core.settings import load_config
from clearml_core.storage.cache import (
    CACHE_FOLDER,
    PARTIAL_PREFIX,
    Cache,
    CacheSettings,
    EntryLock,
    ZeroSizeDownloadError,
    archive_folder_name,
    cache_base_dir,
    entry_name,
)
from clearml_core.storage.cache import locks as cache_module
from clearml_core.storage.cache.locks import _stripe
from tests.helpers import clock_passes, file_clock_passes, wait_for

WORKER = Path(__file__).with_name("cache_worker.py")


def _cache(base: Path, **settings) -> Cache:
    settings.setdefault("default_file_limit", 1000)
    return Cache(CacheSettings(base_dir=base, **settings))


def _writer(data: bytes, calls: list[str] | None = None):
    def download(partial: Path) -> None:
        if calls is not None:
            calls.append(partial.name)
        partial.write_bytes(data)

    return download


_unique = itertools.count()


def _fill(cache: Cache, count: int, size: int = 10, context: str | None = None) -> list[Path]:
    """``count`` new entries of ``size`` bytes, each used a little later than the one before."""
    paths = []
    for _ in range(count):
        i = next(_unique)
        name = entry_name(f"http://h/{i}", f"f{i}.bin")
        paths.append(cache.fetch(context, name, _writer(b"x" * size), url=f"http://h/{i}"))
        cache.flush()  # recorded (and limits enforced, in the background) before the next one
        clock_passes(time.time())  # the next entry is used later
    return paths


# -- naming and location ---------------------------------------------------------------------


def test_entry_name_ends_with_the_object_name_and_is_unique_per_url():
    a = entry_name("s3://bucket/a/model.pt", "model.pt")
    b = entry_name("s3://bucket/b/model.pt", "model.pt")
    assert a.endswith(".model.pt") and b.endswith(".model.pt") and a != b
    assert entry_name("s3://bucket/a/model.pt", "model.pt") == a


def test_entry_name_survives_odd_and_long_names():
    long_name = "x" * 400 + ".tar.gz"
    name = entry_name("http://h/" + long_name, long_name)
    assert len(name.encode()) < 255 and name.endswith(".tar.gz")
    assert "/" not in entry_name("http://h/a", "a/b")
    assert entry_name("http://h/", "").endswith(".object")


def test_base_dir_precedence(tmp_path, monkeypatch):
    conf = tmp_path / "c.conf"
    conf.write_text(f'sdk.storage.cache.default_base_dir: "{tmp_path}/from-conf"')
    config = load_config(conf, defaults=[])
    assert cache_base_dir(load_config(tmp_path / "missing", defaults=[]) if False else None) == (
        Path.home() / ".clearml-core" / "cache"
    )
    assert cache_base_dir(config) == tmp_path / "from-conf"
    monkeypatch.setenv("CLEARML_CACHE_DIR", str(tmp_path / "from-env"))
    assert cache_base_dir(config) == tmp_path / "from-env"


def test_default_location_is_not_clearmls(clearml_home):
    config = load_config()
    assert cache_base_dir(config) == clearml_home / ".clearml-core" / "cache"


# -- hits and misses -------------------------------------------------------------------------


def test_miss_downloads_once_then_hits(tmp_path):
    cache = _cache(tmp_path / "c")
    calls: list[str] = []
    name = entry_name("http://h/data.csv", "data.csv")
    first = cache.fetch(None, name, _writer(b"a,b\n", calls), url="http://h/data.csv")
    second = cache.fetch(None, name, _writer(b"other", calls), url="http://h/data.csv")
    assert first == second == tmp_path / "c" / CACHE_FOLDER / "global" / name
    assert first.read_bytes() == b"a,b\n"
    assert calls == [f"{PARTIAL_PREFIX}{name}"]
    assert cache.lookup(first)


def test_contexts_are_separate_folders(tmp_path):
    cache = _cache(tmp_path / "c")
    name = entry_name("http://h/x", "x")
    a = cache.fetch("team-a", name, _writer(b"a"))
    b = cache.fetch("team-b", name, _writer(b"b"))
    assert a.parent.name == "team-a" and b.parent.name == "team-b"
    assert (a.read_bytes(), b.read_bytes()) == (b"a", b"b")


def test_force_downloads_again_and_drops_old_extractions(tmp_path):
    cache = _cache(tmp_path / "c")
    name = entry_name("http://h/a.zip", "a.zip")
    path = cache.fetch(None, name, _writer(b"v1"))
    folder = path.parent / archive_folder_name(name)
    folder.mkdir()
    cache.add_folder(None, folder.name, 0, parent=name)
    assert cache.fetch(None, name, _writer(b"v2"), force=True).read_bytes() == b"v2"
    assert not folder.exists()
    assert cache.index.children("global", name) == []


def test_failed_download_leaves_no_entry(tmp_path):
    cache = _cache(tmp_path / "c")
    name = entry_name("http://h/x", "x")

    def broken(partial: Path) -> None:
        partial.write_bytes(b"half")
        raise OSError("connection reset")

    with pytest.raises(OSError, match="connection reset"):
        cache.fetch(None, name, broken)
    folder = tmp_path / "c" / CACHE_FOLDER / "global"
    assert sorted(p.name for p in folder.iterdir()) == [".locks"]
    assert cache.index.get("global", name) is None


def test_zero_size_download_is_an_error_unless_the_object_is_empty(tmp_path):
    cache = _cache(tmp_path / "c")
    name = entry_name("http://h/empty", "empty")
    with pytest.raises(ZeroSizeDownloadError, match="empty file"):
        cache.fetch(None, name, _writer(b""), url="http://h/empty")
    assert not (tmp_path / "c" / CACHE_FOLDER / "global" / name).exists()
    asked: list[bool] = []

    def really_empty() -> bool:
        asked.append(True)
        return True

    assert cache.fetch(None, name, _writer(b""), empty_ok=really_empty).stat().st_size == 0
    assert asked == [True]


def test_zero_file_size_check_treats_empty_entries_as_misses(tmp_path):
    cache = _cache(tmp_path / "c", zero_file_size_check=True)
    name = entry_name("http://h/e", "e")
    path = cache.fetch(None, name, _writer(b""), empty_ok=True)
    assert not cache.lookup(path)
    assert cache.fetch(None, name, _writer(b"now full"), empty_ok=True).read_bytes() == b"now full"


@pytest.mark.parametrize("fsync", [True, False])
def test_fsync_setting_flushes_downloads_before_they_become_entries(tmp_path, monkeypatch, fsync):
    conf = tmp_path / "c.conf"
    conf.write_text(f"sdk.storage.cache.fsync: {str(fsync).lower()}")
    settings = CacheSettings.from_config(load_config(conf, defaults=[]))
    assert settings.fsync is fsync
    cache = Cache(settings)
    flushed: list[bool] = []
    name = entry_name("http://h/x", "x")
    partial = cache.folder(None) / f"{PARTIAL_PREFIX}{name}"
    real_fsync = os.fsync

    def watching_fsync(fd: int) -> None:
        # the flush happens while the bytes are still under the partial name
        flushed.append(partial.exists() and not (cache.folder(None) / name).exists())
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", watching_fsync)
    cache.fetch(None, name, _writer(b"data"))
    assert flushed == ([True] if fsync else [])


def test_a_miss_lists_no_folder(tmp_path, monkeypatch):
    cache = _cache(tmp_path / "c", default_file_limit=3)
    _fill(cache, 5)  # the index exists and eviction has run

    def forbidden(*_args, **_kwargs):
        raise AssertionError("the cache listed a folder on a miss")

    monkeypatch.setattr(os, "scandir", forbidden)
    monkeypatch.setattr(os, "listdir", forbidden)
    path = cache.fetch(None, entry_name("http://h/new", "new"), _writer(b"new"))
    assert path.read_bytes() == b"new"
    cache.flush()
    assert cache.index.count("global") == 3


# -- one download for many callers ------------------------------------------------------------


@pytest.mark.parametrize("byte_range_locks", [True, False])
def test_threads_asking_at_once_share_one_download(tmp_path, monkeypatch, byte_range_locks):
    monkeypatch.setattr(cache_module, "_OFD", byte_range_locks and cache_module._ofd_locks())
    cache = _cache(tmp_path / "c")
    calls: list[str] = []
    name = entry_name("http://h/big", "big")
    start = threading.Barrier(8)
    asking: list[int] = []
    results: list[Path] = []

    def slow(partial: Path) -> None:
        calls.append("download")
        assert wait_for(lambda: len(asking) == 8)  # every thread asks while this download runs
        partial.write_bytes(b"payload")

    def worker() -> None:
        start.wait()
        asking.append(threading.get_ident())
        results.append(cache.fetch(None, name, slow))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert calls == ["download"]
    assert len(set(results)) == 1 and results[0].read_bytes() == b"payload"


_workers: list[subprocess.Popen] = []


@pytest.fixture(autouse=True)
def _stop_workers():
    """Workers a failed test left running (one stuck on purpose, one that stays) are killed."""
    yield
    while _workers:
        worker = _workers.pop()
        if worker.poll() is None:
            worker.kill()
            worker.wait(30)


def _worker(cache_dir: Path, source: Path, log: Path, name: str, *extra: str) -> subprocess.Popen:
    worker = subprocess.Popen(
        [sys.executable, str(WORKER), str(cache_dir), str(source), str(log), name, *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    _workers.append(worker)
    return worker


def test_processes_asking_at_once_share_one_download(tmp_path):
    source = tmp_path / "source.bin"
    source.write_bytes(os.urandom(2 * 1024 * 1024))
    log = tmp_path / "downloads.log"
    go = tmp_path / "go"
    name = entry_name("test://shared.bin", "shared.bin")
    ready = [tmp_path / f"ready{i}" for i in range(8)]
    workers = [
        _worker(
            tmp_path / "c",
            source,
            log,
            name,
            "--delay",
            "0.005",
            "--start-file",
            str(go),
            "--ready-file",
            str(r),
        )
        for r in ready
    ]
    assert wait_for(lambda: all(r.exists() for r in ready))  # every interpreter waits at the line
    go.touch()
    outputs = [w.communicate(timeout=120) for w in workers]
    assert [w.returncode for w in workers] == [0] * 8, [err for _out, err in outputs]
    paths = {out.strip() for out, _err in outputs}
    assert len(paths) == 1
    assert len(log.read_text().splitlines()) == 1
    assert Path(paths.pop()).read_bytes() == source.read_bytes()


def test_a_process_records_its_entries_before_it_exits(tmp_path):
    source = tmp_path / "source.bin"
    source.write_bytes(b"recorded")
    name = entry_name("test://recorded.bin", "recorded.bin")
    worker = _worker(tmp_path / "c", source, tmp_path / "log", name)
    _out, err = worker.communicate(timeout=60)
    assert worker.returncode == 0, err
    row = _cache(tmp_path / "c").index.get("global", name)
    assert row is not None and row.size == len(b"recorded") and row.url == f"test://{name}"


# -- kill -9 ---------------------------------------------------------------------------------


@pytest.mark.parametrize("stage", ["before any byte", "mid-download", "after the last byte"])
def test_download_killed_at_any_point_leaves_no_corrupt_entry(tmp_path, stage):
    source = tmp_path / "source.bin"
    source.write_bytes(os.urandom(1024 * 1024))  # 16 chunks of 64 KiB
    log = tmp_path / "downloads.log"
    cache_dir = tmp_path / "c"
    name = entry_name("test://victim.bin", "victim.bin")
    entry = cache_dir / CACHE_FOLDER / "global" / name
    partial = cache_dir / CACHE_FOLDER / "global" / f"{PARTIAL_PREFIX}{name}"
    delay = {"before any byte": "5", "mid-download": "0.2", "after the last byte": "0"}[stage]
    victim = _worker(cache_dir, source, log, name, "--delay", delay, "--stay")  # gone only when killed
    if stage == "before any byte":
        assert wait_for(lambda: log.exists() and partial.exists())
    elif stage == "mid-download":
        assert wait_for(lambda: partial.exists() and partial.stat().st_size >= 3 * 64 * 1024)
    else:
        # as soon as the entry exists; whatever point the process reached, it is killed there
        assert wait_for(
            lambda: entry.exists() or (partial.exists() and partial.stat().st_size == 1024 * 1024)
        )
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=30)
    assert victim.returncode == -signal.SIGKILL
    # an entry that exists is complete; otherwise there is none
    if entry.exists():
        assert entry.read_bytes() == source.read_bytes()
    # the next caller gets a complete file, downloading again when needed
    again = _worker(cache_dir, source, log, name)
    out, err = again.communicate(timeout=60)
    assert again.returncode == 0, err
    assert Path(out.strip()).read_bytes() == source.read_bytes()
    assert not partial.exists()


def _blocked_on(lock_file: Path) -> bool:
    """Whether some process waits for a lock on ``lock_file`` (Linux lists waiters in /proc/locks)."""
    locks = Path("/proc/locks")
    if not locks.exists():
        pytest.skip("no /proc/locks to see a process waiting for a lock")
    inode = lock_file.stat().st_ino if lock_file.exists() else None
    return inode is not None and any(
        line.split()[1] == "->" and f":{inode} " in line for line in locks.read_text().splitlines()
    )


def test_waiters_take_over_when_the_downloader_is_killed(tmp_path):
    source = tmp_path / "source.bin"
    source.write_bytes(os.urandom(512 * 1024))
    log = tmp_path / "downloads.log"
    cache_dir = tmp_path / "c"
    name = entry_name("test://handover.bin", "handover.bin")
    partial = cache_dir / CACHE_FOLDER / "global" / f"{PARTIAL_PREFIX}{name}"
    first = _worker(cache_dir, source, log, name, "--delay", "300")  # stuck after its first chunk
    assert wait_for(lambda: partial.exists() and partial.stat().st_size > 0)
    waiter = _worker(cache_dir, source, log, name)
    lock = cache_module.entry_lock(cache_dir / CACHE_FOLDER / "global", name).path
    assert wait_for(lambda: _blocked_on(lock) or waiter.poll() is not None)
    assert waiter.poll() is None  # waiting for the downloader, not done without it
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=30)
    out, err = waiter.communicate(timeout=60)
    assert waiter.returncode == 0, err
    assert Path(out.strip()).read_bytes() == source.read_bytes()
    assert len(log.read_text().splitlines()) == 2


# -- limits and eviction ---------------------------------------------------------------------


def test_count_limit_evicts_least_recently_used(tmp_path):
    cache = _cache(tmp_path / "c", default_file_limit=3)
    paths = _fill(cache, 3)
    file_clock_passes(time.time() + 0.001, tmp_path)  # a hit now is seen as later use
    assert cache.lookup(paths[0])  # a hit: the oldest becomes the newest
    cache.fetch(None, entry_name("http://h/new", "new.bin"), _writer(b"new"))
    cache.flush()
    # f0 was used, so f1 (the least recently used) went
    assert [p.exists() for p in paths] == [True, False, True]
    assert cache.index.count("global") == 3


def test_set_file_limit_only_raises_like_clearml(tmp_path):
    cache = _cache(tmp_path / "c", default_file_limit=100)
    assert cache.set_file_limit(500) == 500
    assert cache.set_file_limit(10) == 500
    assert cache.set_file_limit(20, "other") == 20  # a context not used yet takes the limit given
    assert cache.file_limit("other") == 20
    cache.folder("used")
    assert cache.set_file_limit(20, "used") == 100


def test_limits_are_per_context(tmp_path):
    cache = _cache(tmp_path / "c", default_file_limit=2)
    _fill(cache, 3, context="a")
    _fill(cache, 2, context="b")
    assert cache.index.count("a") == 2
    assert cache.index.count("b") == 2


def test_byte_limit_evicts_across_contexts_with_margin(tmp_path):
    cache = _cache(tmp_path / "c", max_used_bytes=1000, cleanup_margin_percent=20)
    _fill(cache, 4, size=200, context="a")  # 800 bytes
    _fill(cache, 1, size=300, context="b")  # 1100 > 1000: clean down to 800
    assert cache.index.total_bytes() <= 800
    assert cache.index.count("b") == 1
    assert cache.index.count("a") == 2


def test_min_free_bytes_evicts_everything_else(tmp_path):
    cache = _cache(tmp_path / "c", min_free_bytes=1 << 62)  # no disk is that large
    paths = _fill(cache, 3)
    assert [p.exists() for p in paths] == [False, False, True]


def test_eviction_skips_entries_in_use(tmp_path):
    cache = _cache(tmp_path / "c", default_file_limit=2)
    paths = _fill(cache, 2)
    held = cache.lock(None, paths[0].name)
    assert held.acquire(blocking=False)
    try:
        _fill(cache, 1)
        assert paths[0].exists()  # locked (being read / extracted): kept
        assert not paths[1].exists()
    finally:
        held.release()


def test_evicting_an_archive_removes_what_was_extracted(tmp_path):
    cache = _cache(tmp_path / "c", default_file_limit=1)
    name = entry_name("http://h/a.zip", "a.zip")
    path = cache.fetch(None, name, _writer(b"zip bytes"))
    cache.flush()
    folder = path.parent / archive_folder_name(name)
    (folder / "inner").mkdir(parents=True)
    (folder / "inner" / "x").write_bytes(b"12345")
    cache.add_folder(None, folder.name, 5, parent=name)
    assert cache.index.count("global") == 1  # the extraction does not count as a file
    _fill(cache, 1)
    assert not path.exists() and not folder.exists()


# -- the index ------------------------------------------------------------------------------


def test_missing_index_is_rebuilt_from_disk(tmp_path):
    base = tmp_path / "c"
    cache = _cache(base, default_file_limit=10)
    paths = _fill(cache, 3, size=7)
    name = entry_name("http://h/a.zip", "a.zip")
    zpath = cache.fetch(None, name, _writer(b"zip"))
    folder = zpath.parent / archive_folder_name(name)
    folder.mkdir()
    (folder / "x").write_bytes(b"123")
    cache.index.close()
    for suffix in ("", "-wal", "-shm"):
        (base / CACHE_FOLDER / f"index.sqlite3{suffix}").unlink(missing_ok=True)
    fresh = _cache(base, default_file_limit=10)
    rows = {row.name: row for row in fresh.index.rows()}
    assert {p.name for p in paths} | {name, folder.name} == set(rows)
    assert rows[paths[0].name].size == 7
    assert rows[folder.name].parent == name and rows[folder.name].size == 3
    assert fresh.index.count("global") == 4


def test_corrupt_index_is_rebuilt(tmp_path, caplog):
    base = tmp_path / "c"
    cache = _cache(base)
    paths = _fill(cache, 2)
    cache.index.close()
    for suffix in ("-wal", "-shm"):
        (base / CACHE_FOLDER / f"index.sqlite3{suffix}").unlink(missing_ok=True)
    (base / CACHE_FOLDER / "index.sqlite3").write_bytes(b"this is not a database" * 100)
    fresh = _cache(base)
    assert {row.name for row in fresh.index.rows()} == {p.name for p in paths}
    assert "rebuilding" in caplog.text


def test_index_counters_follow_inserts_and_deletes(tmp_path):
    cache = _cache(tmp_path / "c", default_file_limit=1000)
    _fill(cache, 5, size=3)
    conn = sqlite3.connect(tmp_path / "c" / CACHE_FOLDER / "index.sqlite3")
    assert conn.execute("SELECT count, bytes FROM contexts WHERE context = 'global'").fetchone() == (5, 15)
    conn.close()


# -- listing and clearing --------------------------------------------------------------------


def test_entries_size_and_clear(tmp_path):
    cache = _cache(tmp_path / "c")
    paths = _fill(cache, 3, size=4)
    _fill(cache, 1, size=4, context="other")
    stale = paths[0].parent / f"{PARTIAL_PREFIX}{entry_name('http://h/stale', 'stale')}"
    stale.write_bytes(b"left by a killed process")
    assert {e.path for e in cache.entries()} >= set(paths)
    assert {e.url for e in cache.entries("global")} == {
        f"http://h/{p.name.partition('.f')[2].removesuffix('.bin')}" for p in paths
    }
    size = cache.size()
    assert size["entries"] == 4 and size["bytes"] == 16
    assert size["contexts"]["other"] == {"entries": 1, "bytes": 4}
    held = cache.lock(None, paths[2].name)
    assert held.acquire(blocking=False)
    try:
        removed, freed, busy = cache.clear("global")
    finally:
        held.release()
    assert removed == 2 and busy == [f"global/{paths[2].name}"]
    assert freed >= 8
    assert not paths[0].exists() and paths[2].exists()
    assert not stale.exists()
    assert cache.size()["contexts"] == {
        "global": {"entries": 1, "bytes": 4},
        "other": {"entries": 1, "bytes": 4},
    }


@pytest.mark.parametrize("byte_range_locks", [True, False])
def test_entry_locks_never_create_a_file_per_entry(tmp_path, monkeypatch, byte_range_locks):
    monkeypatch.setattr(cache_module, "_OFD", byte_range_locks and cache_module._ofd_locks())
    cache = _cache(tmp_path / "c", default_file_limit=5)
    _fill(cache, 40)
    locks = sorted(p.name for p in (tmp_path / "c" / CACHE_FOLDER / "global" / ".locks").iterdir())
    if cache_module._OFD:
        assert locks == ["entries.lock"]
    else:
        assert 0 < len(locks) <= 40 and all(len(name) == len("abc.lock") for name in locks)
    # one entry's lock excludes another holder of that entry, not holders of other entries
    held = cache.lock(None, "entry-a")
    assert held.acquire(blocking=False)
    try:
        assert not cache.lock(None, "entry-a").acquire(blocking=False)
        other = cache.lock(None, "entry-b")
        if cache_module._OFD or _stripe("entry-a") != _stripe("entry-b"):
            assert other.acquire(blocking=False)
            other.release()
    finally:
        held.release()
    assert cache.lock(None, "entry-a").acquire(blocking=False)


def test_entry_lock_excludes_across_open_files(tmp_path):
    first = EntryLock(tmp_path / "x.lock")
    second = EntryLock(tmp_path / "x.lock")
    assert first.acquire(blocking=False)
    assert not second.acquire(blocking=False)
    first.release()
    assert second.acquire(blocking=False)
    second.release()
