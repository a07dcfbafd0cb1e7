"""The environment cache: one build per key across processes, leases, LRU, interrupted and failed builds.

The builds here only write files (the cache's contract is a callable that fills a folder); real
installers go through the same code in test_pipeline.py and the pip plugin's tests.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from clearml_core.environments.cache import MARKER, EnvironmentCache, NoRoom, environment_key
from clearml_core.environments.process import BuildAborted
from clearml_core.environments.python import PythonInfo, current_python
from tests.helpers import file_clock_passes

PY = PythonInfo("/usr/bin/python3", "3.11.7", "cpython", "linux-x86_64-glibc2.36")


def fill(counter: Path | None = None, *, fail: bool = False):  # type: ignore[no-untyped-def]
    def build(path: Path, fd: int) -> dict[str, Any]:
        path.mkdir(parents=True)
        (path / "bin").mkdir()
        (path / "bin" / "python").write_text("#!/bin/sh\n")
        if counter is not None:
            with counter.open("a") as handle:
                handle.write("built\n")
        if fail:
            raise RuntimeError("the installer failed")
        return {"frozen": ["six==1.17.0"]}

    return build


def builds(counter: Path) -> int:
    return len(counter.read_text().splitlines()) if counter.exists() else 0


def test_the_key_depends_on_manager_fingerprint_python_platform_and_image() -> None:
    key = environment_key("pip", "f" * 64, PY)
    assert key == environment_key("pip", "f" * 64, PythonInfo(*PY.key().values()))
    others = {
        environment_key("uv", "f" * 64, PY),
        environment_key("pip", "e" * 64, PY),
        environment_key("pip", "f" * 64, PythonInfo("/usr/bin/python3", "3.11.8", "cpython", PY.platform)),
        environment_key("pip", "f" * 64, PythonInfo("/opt/py/bin/python3", "3.11.7", "cpython", PY.platform)),
        environment_key(
            "pip", "f" * 64, PythonInfo(PY.executable, "3.11.7", "cpython", "linux-aarch64-glibc2.36")
        ),
        environment_key("pip", "f" * 64, PY, image="python:3.11"),
    }
    assert key not in others and len(others) == 6


def test_a_miss_builds_once_and_then_hits(tmp_path: Path) -> None:
    cache = EnvironmentCache(tmp_path / "cache")
    counter = tmp_path / "count"
    assert cache.lookup("k1") is None
    with cache.acquire("k1", fill(counter)) as lease:
        assert lease.built and lease.env.python.exists()
        assert lease.metadata["frozen"] == ["six==1.17.0"] and lease.metadata["key"] == "k1"
    with cache.acquire("k1", fill(counter)) as again:
        assert not again.built
    hit = cache.lookup("k1")
    assert hit is not None and hit.path == cache.entry_path("k1")
    hit.release()
    assert builds(counter) == 1


def test_a_failed_build_leaves_nothing_and_is_retried(tmp_path: Path) -> None:
    cache = EnvironmentCache(tmp_path / "cache")
    counter = tmp_path / "count"
    with pytest.raises(RuntimeError, match="the installer failed"):
        cache.acquire("k1", fill(counter, fail=True))
    assert cache.lookup("k1") is None and not cache.entry_path("k1").exists()
    with cache.acquire("k1", fill(counter)) as lease:
        assert lease.built
    assert builds(counter) == 2


def test_least_recently_used_goes_first(tmp_path: Path) -> None:
    cache = EnvironmentCache(tmp_path / "cache", max_entries=2)

    def used_later_than(key: str) -> None:  # an entry's last use is its marker's modification time
        file_clock_passes((cache.entry_path(key) / MARKER).stat().st_mtime, tmp_path)

    for key in ("a", "b"):
        cache.acquire(key, fill()).release()
        used_later_than(key)
    lease = cache.lookup("a")  # a is now more recent than b
    assert lease is not None
    lease.release()
    used_later_than("a")
    cache.acquire("c", fill()).release()
    assert {e.key for e in cache.entries()} == {"a", "c"}


def test_an_entry_in_use_is_never_evicted(tmp_path: Path) -> None:
    cache = EnvironmentCache(tmp_path / "cache", max_entries=1)
    held_a = cache.acquire("a", fill())
    held_b = cache.acquire("b", fill())
    assert {e.key for e in cache.entries()} == {"a", "b"}  # over the limit while both are in use
    assert {e.key for e in cache.entries() if e.in_use} == {"a", "b"}
    assert not cache.evict("a") and cache.entry_path("a").exists()
    held_a.release()  # the release trims: a is free now and the least recently used
    assert [e.key for e in cache.entries()] == ["b"]
    held_b.release()
    assert [e.key for e in cache.entries()] == ["b"]


def test_no_room_on_the_disk_is_reported_after_evicting_what_it_can(tmp_path: Path) -> None:
    roomy = EnvironmentCache(tmp_path / "cache")
    roomy.acquire("old", fill()).release()
    full = EnvironmentCache(tmp_path / "cache", free_space_gb=10**9)
    with pytest.raises(NoRoom, match="free_space_threshold_gb"):
        full.acquire("new", fill())
    assert [e.key for e in full.entries()] == []  # the free entry was evicted trying to make room


def test_leftovers_of_a_dead_build_are_swept(tmp_path: Path) -> None:
    cache = EnvironmentCache(tmp_path / "cache")
    cache.acquire("done", fill()).release()
    half = cache.entry_path("half")
    (half / "lib").mkdir(parents=True)
    assert cache.lookup("half") is None
    assert cache.sweep() == ["half"] and not half.exists()
    assert cache.lookup("done") is not None


def test_a_build_may_be_aborted_while_waiting_for_another(tmp_path: Path) -> None:
    cache = EnvironmentCache(tmp_path / "cache")
    proc = _start_holder(tmp_path, "k1", hold=60)
    try:
        with pytest.raises(BuildAborted, match="stop now"):
            cache.acquire("k1", fill(), should_stop=lambda: "stop now")
    finally:
        proc.kill()
        proc.wait()


HOLDER = """
import sys, time
from pathlib import Path
from clearml_core.environments.cache import EnvironmentCache

root, key, hold, counter = Path(sys.argv[1]), sys.argv[2], float(sys.argv[3]), Path(sys.argv[4])

def build(path, fd):
    path.mkdir(parents=True)
    (path / "bin").mkdir()
    (path / "bin" / "python").write_text("")
    with counter.open("a") as handle:
        handle.write("built\\n")
    print("building", flush=True)
    deadline = time.monotonic() + hold
    while time.monotonic() < deadline and not (root / "go").exists():
        time.sleep(0.02)
    return {"frozen": []}

waited = []

def on_wait():
    waited.append(1)
    print("waiting", flush=True)

lease = EnvironmentCache(root).acquire(key, build, on_wait=on_wait)
print("leased", "built" if lease.built else "hit", "waited" if waited else "direct", flush=True)
time.sleep(float(sys.argv[5]) if len(sys.argv) > 5 else 0)
lease.release()
"""


def _start_holder(tmp_path: Path, key: str, *, hold: float, keep: float = 0.0) -> subprocess.Popen[str]:
    script = tmp_path / "holder.py"
    script.write_text(textwrap.dedent(HOLDER))
    proc = subprocess.Popen(
        [
            sys.executable,
            str(script),
            str(tmp_path / "cache"),
            key,
            str(hold),
            str(tmp_path / "count"),
            str(keep),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() in ("building", "leased hit direct", "leased hit waited")
    return proc


def test_processes_wanting_one_key_share_one_build(tmp_path: Path) -> None:
    first = _start_holder(tmp_path, "k1", hold=60)
    script = tmp_path / "holder.py"
    others = [
        subprocess.Popen(
            [sys.executable, str(script), str(tmp_path / "cache"), "k1", "0", str(tmp_path / "count")],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    for proc in others:  # every one of them finds the build under way and waits for it
        assert proc.stdout is not None and proc.stdout.readline().strip() == "waiting"
    (tmp_path / "cache" / "go").touch()
    outputs = [proc.communicate(timeout=60)[0].split() for proc in others]
    assert first.wait(60) == 0
    assert builds(tmp_path / "count") == 1
    assert all(out == ["leased", "hit", "waited"] for out in outputs), outputs


def test_kill_9_during_a_build_leaves_no_usable_entry(tmp_path: Path) -> None:
    builder = _start_holder(tmp_path, "k1", hold=60)
    builder.send_signal(signal.SIGKILL)
    builder.wait(10)
    cache = EnvironmentCache(tmp_path / "cache")
    assert cache.entry_path("k1").exists() and not (cache.entry_path("k1") / MARKER).exists()
    assert cache.lookup("k1") is None
    assert [(e.key, e.complete, e.in_use) for e in cache.entries()] == [("k1", False, False)]
    with cache.acquire("k1", fill(tmp_path / "count")) as lease:
        assert lease.built
    assert builds(tmp_path / "count") == 2


def test_a_deleted_lock_file_cannot_let_two_builders_in(tmp_path: Path) -> None:
    cache = EnvironmentCache(tmp_path / "cache", max_entries=1)
    cache.acquire("a", fill()).release()
    cache.acquire("b", fill()).release()  # evicts a: its lock file goes too
    assert not (cache.locks / "a.lock").exists()
    counter = tmp_path / "count"
    with cache.acquire("a", fill(counter)) as lease:
        assert lease.built and (cache.locks / "a.lock").exists()
    assert builds(counter) == 1


def test_marker_is_valid_json_with_the_build_metadata(tmp_path: Path) -> None:
    cache = EnvironmentCache(tmp_path / "cache")
    cache.acquire("k", fill()).release()
    data = json.loads((cache.entry_path("k") / MARKER).read_text())
    assert data["key"] == "k" and data["frozen"] == ["six==1.17.0"] and data["created"] > 0
    assert not list(cache.entry_path("k").glob(f".{MARKER}.*"))  # no temporary marker left


def test_the_cache_follows_its_settings(tmp_path: Path) -> None:
    from clearml_core.testing.packages import make_config

    config = make_config(
        tmp_path / "c.conf",
        {
            "agent.venvs_cache.path": str(tmp_path / "vc"),
            "agent.venvs_cache.max_entries": 3,
            "agent.venvs_cache.free_space_threshold_gb": 0.5,
        },
    )
    cache = EnvironmentCache.from_config(config)
    assert cache is not None and (cache.root, cache.max_entries, cache.free_space_gb) == (
        tmp_path / "vc-clearml-core",  # beside the configured folder, which clearml-agent evicts
        3,
        0.5,
    )
    off = make_config(tmp_path / "d.conf", {"agent.venvs_cache.max_entries": 0})
    assert EnvironmentCache.from_config(off) is None
    assert (
        EnvironmentCache.from_config(make_config(tmp_path / "e.conf", {"agent.venvs_cache.path": ""})) is None
    )
    assert current_python().version == ".".join(map(str, sys.version_info[:3]))
    assert os.path.isabs(current_python().executable)


CLEARML_AGENT_EVICTS = """
import sys
from clearml_agent.helper.os.folder_cache import FolderCache

# clearml-agent's venvs cache with room for one entry: adding one evicts every other folder in it
cache = FolderCache(sys.argv[1], max_cache_entries=1)
source = sys.argv[2]
cache.add_entry(["agententry"], source)
"""


@pytest.mark.slow
def test_clearml_agents_eviction_on_the_same_path_leaves_the_cache_alone(
    clearml_agent_python: Path, tmp_path: Path
) -> None:
    """clearml-agent's sample clearml.conf names ~/.clearml/venvs-cache, the default here too: both
    agents on one machine must be able to share it without clearml-agent deleting our entries."""
    from clearml_core.config import Config
    from tests.clearml_side import run_clearml

    configured = tmp_path / "venvs-cache"
    config = Config({"agent": {"venvs_cache": {"path": str(configured), "max_entries": 5}}}, {}, [])
    cache = EnvironmentCache.from_config(config)
    assert cache is not None
    key = environment_key("pip", "six", PY)
    cache.acquire(key, fill()).release()
    before = sorted(p.relative_to(cache.root) for p in cache.root.rglob("*"))

    source = tmp_path / "agent-venv"
    (source / "bin").mkdir(parents=True)
    (source / "bin" / "python").write_text("#!/bin/sh\n")
    for _ in range(2):  # the second add evicts whatever else the folder holds
        run_clearml(clearml_agent_python, CLEARML_AGENT_EVICTS, str(configured), str(source))
    assert [p.name for p in configured.iterdir() if p.is_dir()]  # clearml-agent's own entry
    assert sorted(p.relative_to(cache.root) for p in cache.root.rglob("*")) == before
    lease = cache.lookup(key)
    assert lease is not None
    lease.release()
