"""Helpers shared by the tests: running the CLI in a subprocess, and waiting without guessing.

A test waits for what it needs (an event, or a condition polled with :func:`wait_for`), never for
a fixed time: a sleep is too short on a busy machine and hides a slow path on a fast one. Where
a requirement is itself a time bound (an abort stops the task within 2 s), the test measures from
the event that starts it and compares with :func:`time_bound`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

PATIENCE = 60.0
"""Seconds a test waits for what must happen before it gives up: generous, since only a failing
test waits that long."""


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def text(self) -> str:
        return self.out + self.err


def run_cli(
    *args: str, env: Mapping[str, str] | None = None, input: str | None = None, timeout: float = 60
) -> Result:
    """Run ``clearml-core ARGS`` in a fresh interpreter with the test's environment."""
    merged = dict(os.environ)
    merged.update(env or {})
    completed = subprocess.run(
        [sys.executable, "-m", "clearml_core.cli.main", *args],
        capture_output=True,
        text=True,
        env=merged,
        input=input,
        timeout=timeout,
        check=False,
    )
    return Result(completed.returncode, completed.stdout, completed.stderr)


def wait_for(predicate: Callable[[], T], timeout: float = PATIENCE, interval: float = 0.05) -> T:
    """Poll ``predicate()`` until it returns something true or ``timeout`` seconds have passed;
    returns its last value (so ``assert wait_for(…)`` fails with what it saw last)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


def load_factor() -> float:
    """How many times slower than idle this machine may run now: the runnable processes per CPU
    this process may use (the 1-minute load average over them), and at least 1."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    try:
        load = os.getloadavg()[0]
    except OSError:  # no load average here
        return 1.0
    return max(1.0, load / max(1, cpus))


def time_bound(seconds: float) -> float:
    """A requirement's time bound (``seconds`` on an idle machine), stretched by :func:`load_factor`
    so that others using the machine do not fail the test."""
    return seconds * load_factor()


def clock_passes(stamp: float) -> None:
    """Return once ``time.time()`` reads later than ``stamp``: what is recorded next is later."""
    assert wait_for(lambda: time.time() > stamp, interval=0.001), f"the clock never passed {stamp}"


def file_clock_passes(stamp: float, folder: Path) -> None:
    """Return once a file touched in ``folder`` gets a modification time later than ``stamp``.

    File times come from the kernel's coarse clock (ticks of 1 to 10 ms; whole seconds on some
    file systems), so a file used after this is seen as used later than ``stamp``.
    """
    probe = folder / ".clock-probe"

    def later() -> bool:
        probe.touch()
        return probe.stat().st_mtime > stamp

    try:
        assert wait_for(later, interval=0.001), f"the file clock in {folder} never passed {stamp}"
    finally:
        probe.unlink(missing_ok=True)
