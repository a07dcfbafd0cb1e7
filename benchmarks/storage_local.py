"""clearml-core's StorageManager against ClearML's, side by side, on one machine in one run.

ClearML's ``clearml`` package goes into a separate virtual environment that this script makes
itself (``uv venv`` + ``uv pip install clearml``, under ``.local/``; ``tests/clearml_side.py``, which
the side-by-side tests use too), so the project's own environment never holds it. Both libraries talk to the same HTTP file server on 127.0.0.1 (the
test suite's, run in this process; every client runs in its own process). Targets:

(a) ``python -c "from clearml_core import StorageManager"`` ≤ 0.1x ``from clearml import StorageManager``
(b) a cache hit of ``get_local_copy`` ≤ 0.5x ClearML's, per call
(c) a cache miss with 5,000 entries cached ≤ 1.2x the miss with 100 cached, and the miss ≤ 1.1x
    a bare download of the same object with the backend's driver (``download_file``)
(d) 8 processes asking at once for one uncached 50 MB object: 1 request reaches the server and
    all 8 get identical files

Run: ``uv run python benchmarks/storage_local.py`` (add ``--quick`` for a smoke run). Prints a
table with PASS/FAIL per target; exits 1 when one fails.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.clearml_side import SideEnvError, clearml_env, clearml_python, installed_version  # noqa: E402
from tests.storage.fileserver import FileServer  # noqa: E402

BASELINE_VENV = ROOT / ".local" / "bench-clearml"


# -- the two sides ------------------------------------------------------------------------------


class Side:
    """One library: its interpreter, its import line and an isolated home per run."""

    def __init__(self, label: str, python: str, module: str, work: Path) -> None:
        self.label = label
        self.python = python
        self.module = module
        self.work = work
        self._runs = 0

    def env(self) -> dict[str, str]:
        """A fresh HOME (and cache) for every run, so no run sees another's cache."""
        self._runs += 1
        home = self.work / f"{self.label}-home-{self._runs}"
        home.mkdir(parents=True)
        if self.module == "clearml":
            return clearml_env(home)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CLEARML", "PYTHON"))}
        env["HOME"] = str(home)
        env["CLEARML_CACHE_DIR"] = str(home / "cache")
        return env

    def run(self, code: str, *args: str, env: dict[str, str] | None = None) -> str:
        completed = subprocess.run(
            [self.python, "-c", code, *args],
            env=env or self.env(),
            capture_output=True,
            text=True,
            timeout=1800,
            check=False,
        )
        if completed.returncode != 0:
            sys.exit(f"{self.label} failed ({completed.returncode}):\n{completed.stderr[-3000:]}")
        return completed.stdout

    def popen(self, code: str, *args: str, env: dict[str, str]) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [self.python, "-c", code, *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )


def baseline_python(venv: Path, install: bool) -> tuple[str, str]:
    """ClearML's interpreter (installing it on first use) and ClearML's version."""
    try:
        python = clearml_python(venv, install=install, packages=["clearml"])
        return str(python), installed_version(python)
    except SideEnvError as error:
        sys.exit(str(error))


class QuietFileServer(FileServer):
    """The test suite's file server, minus tracebacks when a client drops a connection."""

    def handle_error(self, request: object, client_address: object) -> None:
        pass


# -- the measurements ---------------------------------------------------------------------------


def import_time(sides: Sequence[Side], runs: int) -> dict[str, float]:
    """Median wall time of ``python -c "from X import StorageManager"``, runs interleaved."""
    times: dict[str, list[float]] = {side.label: [] for side in sides}
    envs = {side.label: side.env() for side in sides}
    for i in range(runs + 2):
        for side in sides:
            start = time.perf_counter()
            side.run(f"from {side.module} import StorageManager", env=envs[side.label])
            if i >= 2:  # two warm-up rounds
                times[side.label].append(time.perf_counter() - start)
    return {label: statistics.median(values) for label, values in times.items()}


HIT = """
import sys, time
from {module} import StorageManager
url, calls = sys.argv[1], int(sys.argv[2])
assert StorageManager.get_local_copy(url)
rounds = []
for _ in range(5):
    start = time.perf_counter()
    for _ in range(calls):
        StorageManager.get_local_copy(url)
    rounds.append((time.perf_counter() - start) / calls)
print(sorted(rounds)[2])
"""


def hit_time(side: Side, url: str, calls: int) -> float:
    return float(side.run(HIT.format(module=side.module), url, str(calls)).strip())


POPULATE = """
import sys
from {module} import StorageManager
base, cached = sys.argv[1], int(sys.argv[2])
StorageManager.set_cache_file_limit(cached + 1000)
for i in range(cached):
    assert StorageManager.get_local_copy(f"{{base}}small/{{i}}.bin")
"""

MISS = """
import json, sys, time
from {module} import StorageManager
base, cached, first, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
StorageManager.set_cache_file_limit(cached + 1000)
miss = []
for i in range(first, first + count):
    start = time.perf_counter()
    assert StorageManager.get_local_copy(f"{{base}}big/{{i}}.bin")
    miss.append(time.perf_counter() - start)
print(json.dumps(miss))
"""

# Our side, in one process: a miss in the cache holding 100 entries, a miss in the cache holding
# 5,000 and a bare download_file of the same object, one after the other, object by object, so a
# load spike on a busy machine hits all three alike. The two caches are two loaded states of the
# storage's URL resolution (clearml_core.storage.resolution), switched between calls (the environment variable and the state together, so neither is
# rebuilt).
PAIRED = """
import json, os, sys, time
import clearml_core.storage.resolution as resolution
from clearml_core import StorageManager
from clearml_core.storage.backends import driver_for
from clearml_core.storage.url import parse_url
base, few_dir, many_dir, first, count, bare_dir = sys.argv[1:7]
first, count = int(first), int(count)
states = {{}}
for label, folder in (("few", few_dir), ("many", many_dir)):
    os.environ["CLEARML_CACHE_DIR"] = folder
    StorageManager.set_cache_file_limit(10000)
    states[label] = resolution._state
driver = driver_for(parse_url(base))
times = {{"few": [], "many": [], "bare": []}}
steps = ["few", "many", "bare"]
for i in range(first, first + count):
    url = f"{{base}}big/{{i}}.bin"
    for label in steps[i % 3:] + steps[:i % 3]:
        if label != "bare":
            os.environ["CLEARML_CACHE_DIR"] = states[label].env
            resolution._state = states[label]
        start = time.perf_counter()
        if label == "bare":
            driver.download_file(parse_url(url), os.path.join(bare_dir, f"{{i}}.bin"))
        else:
            assert StorageManager.get_local_copy(url)
        times[label].append(time.perf_counter() - start)
print(json.dumps(times))
"""


def populate(side: Side, base: str, cached: int) -> dict[str, str]:
    """A home whose cache holds ``cached`` entries; returns its environment."""
    env = side.env()
    side.run(POPULATE.format(module=side.module), base, str(cached), env=env)
    return env


def ours_paired(side: Side, base: str, many: int, objects: int, rounds: int) -> dict[str, list[float]]:
    """Misses with 100 and ``many`` entries cached and bare downloads, measured side by side."""
    few_env = populate(side, base, 100)
    many_env = populate(side, base, many)
    times: dict[str, list[float]] = {"few": [], "many": [], "bare": []}
    for r in range(rounds):
        work = Path(tempfile.mkdtemp(dir=side.work, prefix="bare-"))
        out = side.run(
            PAIRED.format(),
            base,
            few_env["CLEARML_CACHE_DIR"],
            many_env["CLEARML_CACHE_DIR"],
            str(r * objects),
            str(objects),
            str(work),
            env=few_env,
        )
        shutil.rmtree(work, ignore_errors=True)
        for label, values in json.loads(out).items():
            times[label] += values
    return times


def theirs_rounds(
    side: Side, base: str, many: int, objects: int, rounds: int
) -> tuple[list[float], list[float]]:
    """ClearML's misses with 100 and ``many`` entries cached, in alternating rounds (for comparison)."""
    envs = {100: populate(side, base, 100), many: populate(side, base, many)}
    misses: dict[int, list[float]] = {100: [], many: []}
    for r in range(rounds):
        for cached in (100, many) if r % 2 == 0 else (many, 100):
            out = side.run(
                MISS.format(module=side.module),
                base,
                str(cached),
                str(r * objects),
                str(objects),
                env=envs[cached],
            )
            misses[cached] += json.loads(out)
    return misses[100], misses[many]


MANY = """
import hashlib, os, sys, time
from {module} import StorageManager
url, go = sys.argv[1], sys.argv[2]
while not os.path.exists(go):
    time.sleep(0.001)
path = StorageManager.get_local_copy(url)
digest = hashlib.sha256()
with open(path, "rb") as stream:
    for chunk in iter(lambda: stream.read(1 << 20), b""):
        digest.update(chunk)
print(path, digest.hexdigest())
"""


def many_processes(
    side: Side, server: FileServer, url: str, path: str, processes: int
) -> tuple[int, list[str]]:
    """(GET requests the server saw for ``path``, each process's sha256 of what it got)."""
    env = side.env()
    go = Path(env["HOME"]) / "go"
    with server.lock:
        before = sum(1 for method, p, _r in server.requests if method == "GET" and p == path)
    procs = [side.popen(MANY.format(module=side.module), url, str(go), env=env) for _ in range(processes)]
    time.sleep(3.0)  # every interpreter imports and waits at the line
    go.touch()
    digests = []
    for proc in procs:
        out, err = proc.communicate(timeout=600)
        if proc.returncode != 0:
            sys.exit(f"{side.label}: a process failed:\n{err[-3000:]}")
        digests.append(out.split()[-1])
    with server.lock:
        after = sum(1 for method, p, _r in server.requests if method == "GET" and p == path)
    return after - before, digests


# -- the report ---------------------------------------------------------------------------------


def _ms(value: float) -> str:
    return f"{value * 1e3:.2f} ms"


def _us(value: float) -> str:
    return f"{value * 1e6:.1f} µs"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--baseline-venv", type=Path, default=BASELINE_VENV, help="where ClearML is installed"
    )
    parser.add_argument(
        "--no-install", action="store_true", help="fail instead of creating the baseline venv"
    )
    parser.add_argument("--quick", action="store_true", help="fewer runs and entries (a smoke run)")
    parser.add_argument("--object-mb", type=float, default=4.0, help="size of the objects missed in (c)")
    args = parser.parse_args(argv)

    runs = 5 if args.quick else 15
    cached_many = 500 if args.quick else 5000
    objects = 4 if args.quick else 10
    rounds = 2 if args.quick else 4
    hit_calls = 2000 if args.quick else 20000

    clearml_python, clearml_version = baseline_python(args.baseline_venv, not args.no_install)
    work = Path(tempfile.mkdtemp(prefix="clearml-core-bench-"))
    ours = Side("clearml-core", sys.executable, "clearml_core", work)
    theirs = Side("ClearML", clearml_python, "clearml", work)
    server = QuietFileServer(work / "served")
    import threading

    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    rows: list[tuple[str, str, str, str, str, bool]] = []
    try:
        root = work / "served"
        (root / "small").mkdir(parents=True)
        (root / "big").mkdir()
        for i in range(cached_many):
            (root / "small" / f"{i}.bin").write_bytes(os.urandom(1024))
        size = int(args.object_mb * 1024 * 1024)
        for i in range(objects * rounds):
            (root / "big" / f"{i}.bin").write_bytes(os.urandom(size))
        (root / "hit.bin").write_bytes(os.urandom(1024 * 1024))
        (root / "fifty.bin").write_bytes(os.urandom(50 * 1024 * 1024))
        base = server.url

        print(f"(a) import time, {runs} interleaved runs …", file=sys.stderr)
        imports = import_time([ours, theirs], runs)
        ratio = imports[ours.label] / imports[theirs.label]
        rows.append(
            (
                "(a) from … import StorageManager",
                f"{imports[ours.label]:.3f} s",
                f"{imports[theirs.label]:.3f} s",
                f"{ratio:.3f}",
                "≤ 0.10",
                ratio <= 0.10,
            )
        )

        print("(b) cache hits …", file=sys.stderr)
        our_hit = statistics.median(hit_time(ours, base + "hit.bin", hit_calls) for _ in range(3))
        their_hit = statistics.median(
            hit_time(theirs, base + "hit.bin", max(200, hit_calls // 10)) for _ in range(3)
        )
        ratio = our_hit / their_hit
        rows.append(
            (
                "(b) get_local_copy, cache hit",
                _us(our_hit),
                _us(their_hit),
                f"{ratio:.3f}",
                "≤ 0.50",
                ratio <= 0.5,
            )
        )

        print(f"(c) misses with 100 and {cached_many} entries cached …", file=sys.stderr)
        med = statistics.median
        ours_times = ours_paired(ours, base, cached_many, objects, rounds)
        few, many, bare = ours_times["few"], ours_times["many"], ours_times["bare"]
        # per object: the 5,000-entry miss over the 100-entry miss, each miss over the bare download
        scaling = med([m / f for m, f in zip(many, few, strict=True)])
        overhead = med([m / b for m, b in zip(few + many, bare + bare, strict=True)])
        their_few, their_many = theirs_rounds(theirs, base, cached_many, objects, rounds)
        their_scaling = med(their_many) / med(their_few)
        rows.append(
            (
                f"(c) miss, {cached_many} vs 100 cached ({args.object_mb:g} MB)",
                f"{_ms(med(many))} / {_ms(med(few))}",
                f"{_ms(med(their_many))} / {_ms(med(their_few))} = {their_scaling:.2f}",
                f"{scaling:.3f}",
                "≤ 1.20",
                scaling <= 1.2,
            )
        )
        rows.append(
            (
                "(c) miss vs bare download_file",
                f"{_ms(med(few + many))} / {_ms(med(bare))}",
                "",
                f"{overhead:.3f}",
                "≤ 1.10",
                overhead <= 1.1,
            )
        )

        print("(d) 8 processes, one 50 MB object …", file=sys.stderr)
        expected = hashlib.sha256((root / "fifty.bin").read_bytes()).hexdigest()
        requests, digests = many_processes(ours, server, base + "fifty.bin", "/fifty.bin", 8)
        their_requests, their_digests = many_processes(theirs, server, base + "fifty.bin", "/fifty.bin", 8)
        identical = all(d == expected for d in digests)
        their_identical = sum(d == expected for d in their_digests)
        rows.append(
            (
                "(d) 8 processes, one 50 MB object",
                f"{requests} request, {sum(d == expected for d in digests)}/8 identical",
                f"{their_requests} requests, {their_identical}/8 identical",
                "",
                "1 request, 8/8",
                requests == 1 and identical,
            )
        )
    finally:
        server.shutdown()
        server.server_close()
        shutil.rmtree(work, ignore_errors=True)

    print()
    print(
        f"storage benchmark: clearml-core vs ClearML {clearml_version}, python {platform.python_version()}, "
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs"
    )
    headers = ("target", "clearml-core", f"ClearML {clearml_version}", "ratio", "goal", "result")
    table = [headers, *[(*row[:5], "PASS" if row[5] else "FAIL") for row in rows]]
    widths = [max(len(r[i]) for r in table) for i in range(len(headers))]
    for row in table:
        print("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
    print(
        textwrap.dedent(
            f"""
            (a) median of {runs} interleaved runs each; (b) median of 3 processes x 5 rounds;
            (c) {rounds} x {objects} objects of {args.object_mb:g} MB, each missed in the 100-entry cache, missed
                in the {cached_many}-entry cache and downloaded bare, one right after the other in one
                process; ratios are medians of the per-object ratios. ClearML's column: medians of
                alternating rounds, for comparison;
            (d) GET requests counted at the server; files compared by sha256 with the source.
            """
        ).rstrip()
    )
    return 0 if all(row[5] for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
