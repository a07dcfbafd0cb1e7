"""Dispatch on the control planes, Redis and SQLite side by side, in one run, as a table with
PASS/FAIL (the targets are Redis's; SQLite is printed beside for the same workload).

1. Dispatch throughput: N queued tasks, 8 consumer processes popping as fast as they can from one
   queue on loopback; tasks per second from the moment all eight are released until the queue is
   empty, and every task handed out exactly once (Redis target ≥ 2,000 tasks/s, 0 duplicates).
   Run ``--repeat`` times; the table shows the median and the range.
2. Dispatch latency: a waiter process does what an idle daemon does between polls
   (``wait_for_tasks`` on its queue, then ``pop``); from just before ``enqueue`` to the waiter
   holding the task (Redis targets: p50 ≤ 5 ms, p99 ≤ 50 ms).
3. Idle daemon: a real ``clearml-core agent daemon`` with nothing to do (default polling interval
   and heartbeat period), CPU time over 60 s (``--quick``: 15 s) as a share of one core (Redis
   target ≤ 0.5%).

The Redis is a ``redis-server`` started here on 127.0.0.1 with its own port and folder (Debian's
package; ``scripts/test.sh`` installs it). Everything happens in a temporary home folder.
Run from the workspace venv: ``uv run python benchmarks/controlplane.py [--quick]``. Exits 1 when a
target is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.common import consumer, percentile, spread, wait_for  # noqa: E402
from plugins.controlplane_redis.tests.support import RedisServer  # noqa: E402

THROUGHPUT_TARGET = 2000.0
P50_TARGET_MS = 5.0
P99_TARGET_MS = 50.0
IDLE_TARGET_PERCENT = 0.5
CONSUMERS = 8


def waiter(url: str) -> None:
    """What an idle daemon does between polls: wait for the queue, pop; report each task it holds."""
    from clearml_core.controlplane import open_control_plane

    plane = open_control_plane(url)
    print("ready", flush=True)
    while True:
        if plane.wait_for_tasks(["lat"], 5.0, poll=1.0):
            task = plane.pop(["lat"], "waiter")
            if task is not None:
                print(f"{task.id} {time.time()!r}", flush=True)


def throughput(url: str, work: Path, count: int, env: dict[str, str]) -> tuple[float, int, int]:
    from clearml_core.controlplane import Script, Task, open_control_plane

    plane = open_control_plane(url)
    plane.create_queue("bench", exist_ok=True)
    for index in range(count):
        task = plane.create_task(Task(name=f"b{index}", script=Script(entry_point="x.py")))
        plane.enqueue(task.id, "bench")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    go = work / "go"
    procs = []
    for index in range(CONSUMERS):
        args = [url, f"consumer-{index}", str(work / f"ready{index}"), str(go), str(work / f"out{index}")]
        procs.append(subprocess.Popen([sys.executable, __file__, "--consumer", *args], env=env))
    wait_for(lambda: all((work / f"ready{i}").exists() for i in range(CONSUMERS)), 120, "the consumers")
    started = time.time()
    go.touch()
    for proc in procs:
        if proc.wait(600) != 0:
            sys.exit("a consumer failed")
    results = [json.loads((work / f"out{i}").read_text()) for i in range(CONSUMERS)]
    ids = [task_id for result in results for task_id in result["ids"]]
    elapsed = max(result["end"] for result in results) - started
    plane.close()
    return len(ids) / elapsed, len(ids) - len(set(ids)), len(set(ids))


def latency(url: str, samples: int, env: dict[str, str]) -> list[float]:
    """Milliseconds from just before enqueue to the waiter holding the task, per sample."""
    from clearml_core.controlplane import Script, Task, open_control_plane

    plane = open_control_plane(url)
    plane.create_queue("lat", exist_ok=True)
    proc = subprocess.Popen(
        [sys.executable, __file__, "--waiter", url], stdout=subprocess.PIPE, text=True, env=env
    )
    assert proc.stdout is not None
    try:
        if proc.stdout.readline().strip() != "ready":
            sys.exit("the waiter did not start")
        times = []
        for _ in range(samples):
            task = plane.create_task(Task(name="lat", script=Script(entry_point="x.py")))
            time.sleep(0.01)  # let the waiter settle into its wait, as an idle daemon would be
            before = time.time()
            plane.enqueue(task.id, "lat")
            task_id, held = proc.stdout.readline().split()
            if task_id != task.id:
                sys.exit(f"the waiter got {task_id}, not {task.id}")
            times.append((float(held) - before) * 1000)
        return times
    finally:
        proc.terminate()
        proc.wait(30)
        plane.close()


def idle_cpu(env: dict[str, str], log: Path, url: str, seconds: float) -> float:
    import psutil

    from clearml_core.controlplane import open_control_plane

    plane = open_control_plane(url)
    plane.create_queue("idle", exist_ok=True)
    with open(log, "wb") as handle:
        daemon = subprocess.Popen(
            [sys.executable, "-m", "clearml_core.cli.main", "agent", "daemon", "--queue", "idle"],
            stdout=handle,
            stderr=subprocess.STDOUT,
            env={**env, "CLEARML__AGENT__CONTROL_PLANE": url, "CLEARML_WORKER_ID": f"idle-{os.getpid()}"},
        )
    try:
        wait_for(
            lambda: any(w.queues == ["idle"] for w in plane.list_workers()), 60, "the daemon to register"
        )
        time.sleep(2.0)  # past its start-up
        process = psutil.Process(daemon.pid)
        before = process.cpu_times()
        began = time.monotonic()
        time.sleep(seconds)
        after = process.cpu_times()
        used = (after.user - before.user) + (after.system - before.system)
        return 100.0 * used / (time.monotonic() - began)
    finally:
        daemon.terminate()
        daemon.wait(30)
        plane.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer tasks and samples, a 15 s idle window")
    parser.add_argument("--tasks", type=int, default=None, help="tasks per throughput run (default 3000)")
    parser.add_argument("--repeat", type=int, default=None, help="throughput runs per store (default 3)")
    parser.add_argument("--consumer", nargs=5, help=argparse.SUPPRESS)
    parser.add_argument("--waiter", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.consumer:
        consumer(*args.consumer)
        return 0
    if args.waiter:
        waiter(args.waiter)
        return 0
    count = args.tasks or (1500 if args.quick else 3000)
    repeat = args.repeat or (1 if args.quick else 3)
    samples = 100 if args.quick else 300
    idle_seconds = 15.0 if args.quick else 60.0

    home = Path(tempfile.mkdtemp(prefix="clearml-bench-"))
    os.environ["HOME"] = str(home)
    for name in (
        "CLEARML_CONFIG_FILE",
        "CLEARML_WORKER_ID",
        "CLEARML_WORKER_NAME",
        "CLEARML_REDIS_SERVICE_HOST",
    ):
        os.environ.pop(name, None)
    env = dict(os.environ)
    load_before = os.getloadavg()
    server = RedisServer(home / "redis")
    server.start()
    results: dict[str, dict[str, object]] = {}
    try:
        for store, make_url in (
            ("redis", lambda run: server.url(f"bench-{run}")),
            ("sqlite", lambda run: f"sqlite:///{home / f'bench-{run}.db'}"),
        ):
            rates, duplicates, handed = [], 0, []
            for run in range(repeat):
                rate, dups, distinct = throughput(make_url(f"t{run}"), home / "work", count, env)
                rates.append(rate)
                duplicates += dups
                handed.append(distinct)
            times = latency(make_url("lat"), samples, env)
            idle = idle_cpu(env, home / f"daemon-{store}.log", make_url("idle"), idle_seconds)
            results[store] = {
                "rates": rates,
                "duplicates": duplicates,
                "handed": handed,
                "times": times,
                "idle": idle,
            }
    finally:
        server.stop()
        load_after = os.getloadavg()
        shutil.rmtree(home, ignore_errors=True)

    redis, sqlite = results["redis"], results["sqlite"]

    def med(store: dict[str, object]) -> float:
        return statistics.median(store["rates"])  # type: ignore[arg-type]

    def lat(store: dict[str, object], share: float) -> float:
        return percentile(store["times"], share)  # type: ignore[arg-type]

    rows = [
        (
            f"dispatch, {CONSUMERS} processes, {count} tasks x{repeat}",
            f"{spread(redis['rates'])} tasks/s, {redis['duplicates']} duplicates",  # type: ignore[arg-type]
            f"{spread(sqlite['rates'])} tasks/s, {sqlite['duplicates']} dup.",  # type: ignore[arg-type]
            f"{med(redis) / med(sqlite):.1f}x",
            f"≥ {THROUGHPUT_TARGET:,.0f}/s, 0 duplicates",
            med(redis) >= THROUGHPUT_TARGET
            and redis["duplicates"] == 0
            and all(n == count for n in redis["handed"]),  # type: ignore[attr-defined]
        ),
        (
            f"enqueue → waiter holds it, p50 ({samples} samples)",
            f"{lat(redis, 0.5):.2f} ms",
            f"{lat(sqlite, 0.5):.2f} ms",
            f"{lat(sqlite, 0.5) / lat(redis, 0.5):.0f}x faster",
            f"≤ {P50_TARGET_MS:g} ms",
            lat(redis, 0.5) <= P50_TARGET_MS,
        ),
        (
            "enqueue → waiter holds it, p99 (p90, max)",
            f"{lat(redis, 0.99):.2f} ms ({lat(redis, 0.9):.2f}, {max(redis['times']):.1f})",  # type: ignore[type-var]
            f"{lat(sqlite, 0.99):.2f} ms ({lat(sqlite, 0.9):.2f}, {max(sqlite['times']):.1f})",  # type: ignore[type-var]
            f"{lat(sqlite, 0.99) / lat(redis, 0.99):.0f}x faster",
            f"≤ {P99_TARGET_MS:g} ms",
            lat(redis, 0.99) <= P99_TARGET_MS,
        ),
        (
            f"idle daemon, {idle_seconds:.0f} s, default intervals",
            f"{redis['idle']:.2f}% of one core",
            f"{sqlite['idle']:.2f}% of one core",
            "",
            f"≤ {IDLE_TARGET_PERCENT:g}%",
            float(redis["idle"]) <= IDLE_TARGET_PERCENT,  # type: ignore[arg-type]
        ),
    ]
    print(f"control-plane dispatch, Redis beside SQLite{' (--quick)' if args.quick else ''}")
    print(
        f"python {platform.python_version()} on {platform.system()} {platform.machine()}, {os.cpu_count()} CPUs; "
        f"load average {load_before[0]:.2f} before, {load_after[0]:.2f} after (the machine may be shared)"
    )
    print()
    header = ("check", "redis", "sqlite", "ratio", "target (redis)", "verdict")
    table = [header, *[(*row[:5], "PASS" if row[5] else "FAIL") for row in rows]]
    widths = [max(len(str(line[i])) for line in table) for i in range(len(header))]
    for line in table:
        print(
            "  ".join(
                str(cell).ljust(widths[i]) if i < len(header) - 1 else str(cell)
                for i, cell in enumerate(line)
            )
        )
    return 0 if all(row[5] for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
