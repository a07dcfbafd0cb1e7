"""The agent's loop on the embedded SQLite control plane: dequeue throughput, start-up overhead of a
task, and the cost of an idle daemon, in one run, as a table with PASS/FAIL.

1. Dequeue throughput: N queued tasks, 4 consumer processes popping as fast as they can from one
   queue; tasks per second from the moment all four are released until the queue is empty, and
   every task must be handed out exactly once (target ≥ 500 tasks/s, zero duplicates).
2. Overhead: a running daemon (``--polling-interval 1``); from enqueueing a folder task to its
   script's first line running, minus the time ``python script.py`` takes to reach that line
   (target ≤ 300 ms, median of the runs).
3. Idle daemon: the same daemon with nothing to do, CPU time over 60 s (``--quick``: 15 s) as a
   share of one core (target ≤ 1%).

Everything happens in a temporary home folder; nothing of the user's ~/.clearml-core is touched.
Run from the workspace venv: ``uv run python benchmarks/agent_loop.py [--quick]``. Exits 1 when a
target is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import consumer, cpu_share, machine, verdicts, wait_for

THROUGHPUT_TARGET = 500.0
OVERHEAD_TARGET_MS = 300.0
IDLE_TARGET_PERCENT = 1.0
CONSUMERS = 4


def dequeue_throughput(plane, db: Path, work: Path, count: int) -> tuple[float, int, int]:  # type: ignore[no-untyped-def]
    from clearml_core.controlplane import Script, Task

    plane.create_queue("bench")
    for index in range(count):
        task = plane.create_task(Task(name=f"b{index}", script=Script(entry_point="x.py")))
        plane.enqueue(task.id, "bench")
    go = work / "go"
    procs = []
    for index in range(CONSUMERS):
        args = [
            f"sqlite:///{db}",
            f"consumer-{index}",
            str(work / f"ready{index}"),
            str(go),
            str(work / f"out{index}"),
        ]
        procs.append(subprocess.Popen([sys.executable, __file__, "--consumer", *args]))
    wait_for(lambda: all((work / f"ready{i}").exists() for i in range(CONSUMERS)), 120, "the consumers")
    started = time.time()
    go.touch()
    for proc in procs:
        if proc.wait(600) != 0:
            sys.exit("a consumer failed")
    results = [json.loads((work / f"out{i}").read_text()) for i in range(CONSUMERS)]
    ids = [task_id for result in results for task_id in result["ids"]]
    elapsed = max(result["end"] for result in results) - started
    duplicates = len(ids) - len(set(ids))
    return len(ids) / elapsed, duplicates, len(set(ids))


SCRIPT = "import time; print(repr(time.time()), flush=True)\n"


def plain_python(script: Path, runs: int) -> float:
    """Seconds from starting ``python script.py`` to its first line running (median)."""
    times = []
    for _ in range(runs):
        before = time.time()
        out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, check=True).stdout
        times.append(float(out.split()[0]) - before)
    return statistics.median(times)


def start_daemon(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "wb") as handle:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "clearml_core.cli.main",
                "agent",
                "daemon",
                "--queue",
                "lat",
                "--polling-interval",
                "1",
            ],
            stdout=handle,
            stderr=subprocess.STDOUT,
            env=env,
        )


def task_overhead(plane, folder: Path, runs: int, plain: float) -> tuple[list[float], list[float]]:  # type: ignore[no-untyped-def]
    from clearml_core.controlplane import Script, Task, TaskStatus

    overheads, visible = [], []
    for _ in range(runs):
        task = plane.create_task(Task(name="lat", script=Script(folder=str(folder), entry_point="script.py")))
        time.sleep(0.3)  # let the daemon settle into its idle wait, as it would be
        enqueued = time.time()
        plane.enqueue(task.id, "lat")
        first: dict[str, float] = {}

        def seen(task_id: str = task.id, box: dict[str, float] = first) -> bool:
            for event in plane.read_logs(task_id):
                for line in event.lines:
                    try:
                        box.setdefault("line", float(line))
                        box.setdefault("visible", time.time())
                    except ValueError:
                        continue
            return "line" in box

        wait_for(seen, 60, "the task's first line")
        wait_for(
            lambda t=task.id: plane.get_task(t).status == TaskStatus.COMPLETED, 60, "the task to complete"
        )
        overheads.append((first["line"] - enqueued - plain) * 1000)
        visible.append((first["visible"] - enqueued) * 1000)
    return overheads, visible


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer tasks, a 15 s idle window")
    parser.add_argument("--tasks", type=int, default=None, help="tasks for the dequeue test (default 2000)")
    parser.add_argument("--consumer", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.consumer:
        consumer(*args.consumer)
        return 0
    count = args.tasks or (1000 if args.quick else 2000)
    runs = 5 if args.quick else 10
    idle_seconds = 15.0 if args.quick else 60.0

    home = Path(tempfile.mkdtemp(prefix="clearml-bench-"))
    os.environ["HOME"] = str(home)
    for name in ("CLEARML_CONFIG_FILE", "CLEARML_WORKER_ID", "CLEARML_WORKER_NAME"):
        os.environ.pop(name, None)
    env = dict(os.environ)
    daemon = None
    try:
        from clearml_core.controlplane import open_control_plane

        plane = open_control_plane()
        db = home / ".clearml-core" / "state.db"
        work = home / "work"
        work.mkdir()

        rate, duplicates, distinct = dequeue_throughput(plane, db, work, count)

        folder = home / "task"
        folder.mkdir()
        (folder / "script.py").write_text(SCRIPT)
        plain = plain_python(folder / "script.py", runs=max(runs, 7))
        plane.create_queue("lat")
        daemon = start_daemon(env, home / "daemon.log")
        wait_for(lambda: plane.list_workers(), 60, "the daemon to register")
        overheads, visible = task_overhead(plane, folder, runs, plain)
        time.sleep(2.0)  # the last task's threads wind down
        idle = cpu_share([daemon.pid], idle_seconds)[0]
    finally:
        if daemon is not None and daemon.poll() is None:
            daemon.terminate()
            daemon.wait(30)
        shutil.rmtree(home, ignore_errors=True)

    overhead = statistics.median(overheads)
    rows = [
        (
            f"dequeue, {CONSUMERS} processes, {count} tasks",
            f"{rate:,.0f} tasks/s, {duplicates} duplicates ({distinct}/{count} handed out)",
            f"≥ {THROUGHPUT_TARGET:.0f}/s, 0 duplicates",
            rate >= THROUGHPUT_TARGET and duplicates == 0 and distinct == count,
        ),
        (
            "enqueue → first line, minus plain python",
            f"{overhead:.0f} ms median (max {max(overheads):.0f}; plain python {plain * 1000:.0f} ms)",
            f"≤ {OVERHEAD_TARGET_MS:.0f} ms",
            overhead <= OVERHEAD_TARGET_MS,
        ),
        (
            f"idle daemon, polling 1 s, {idle_seconds:.0f} s",
            f"{idle:.2f}% of one core",
            f"≤ {IDLE_TARGET_PERCENT:g}%",
            idle <= IDLE_TARGET_PERCENT,
        ),
    ]
    print(f"agent loop on the embedded SQLite control plane{' (--quick)' if args.quick else ''}")
    print(machine())
    print(
        f"(first line visible in the control plane: {statistics.median(visible):.0f} ms after enqueue, median)"
    )
    print()
    return verdicts(rows)


if __name__ == "__main__":
    sys.exit(main())
