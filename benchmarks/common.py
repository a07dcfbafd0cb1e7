"""What the benchmarks share: waiting for their processes, measuring CPU, summarising what they
measured, and printing the machine and the table of checks with PASS/FAIL."""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


def wait_for(predicate: Callable[[], T], timeout: float, what: str) -> T:
    """``predicate()``'s first true value within ``timeout`` seconds; else the benchmark stops."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.01)
    sys.exit(f"timed out waiting for {what}")


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def spread(values: list[float]) -> str:
    """The median of several runs, with their range."""
    if len(values) == 1:
        return f"{values[0]:,.0f}"
    return f"{statistics.median(values):,.0f} (range {min(values):,.0f}-{max(values):,.0f})"


def cpu_share(pids: list[int], seconds: float) -> list[float]:
    """Percent of one core each process uses over the next ``seconds``."""
    import psutil

    watched = [psutil.Process(pid) for pid in pids]
    before = [p.cpu_times() for p in watched]
    began = time.monotonic()
    time.sleep(seconds)
    after = [p.cpu_times() for p in watched]
    wall = time.monotonic() - began
    return [
        100.0 * ((a.user - b.user) + (a.system - b.system)) / wall for a, b in zip(after, before, strict=True)
    ]


Row = tuple[str, str, str, bool]
"""One check: what is measured, the result, the target, whether the result meets it."""


def machine() -> str:
    return f"python {platform.python_version()} on {platform.system()} {platform.machine()}, {os.cpu_count()} CPUs"


def verdicts(rows: Sequence[Row]) -> int:
    """Print the table; the exit code: 1 when a target is missed."""
    header = ("check", "result", "target")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(3)]
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + "  verdict")
    for *cells, ok in rows:
        print(
            "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + ("  PASS" if ok else "  FAIL")
        )
    return 0 if all(row[3] for row in rows) else 1


def consumer(url: str, worker: str, ready: str, go: str, out: str) -> None:
    """One consumer process of a dequeue benchmark: pop from queue ``bench`` of the control plane
    at ``url`` until it is empty, from the moment ``go`` exists; write what it got to ``out``."""
    from clearml_core.controlplane import open_control_plane

    plane = open_control_plane(url)
    plane.get_queue("bench")  # connect and load before the clock starts
    Path(ready).touch()
    while not os.path.exists(go):
        time.sleep(0.001)
    got = []
    while True:
        task = plane.pop(["bench"], worker)
        if task is None:
            break
        got.append(task.id)
    Path(out).write_text(json.dumps({"ids": got, "end": time.time()}))
