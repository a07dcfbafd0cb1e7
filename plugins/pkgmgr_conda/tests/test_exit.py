"""A process that solves with rattler and exits at once exits cleanly (py-rattler's worker threads
would otherwise crash Python's finalization now and then: ``agent execute``, ``agent build``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

SOLVE_AND_EXIT = """
import sys
from rattler import Channel, solve
from clearml_core_pkgmgr_conda import aio
aio.run(lambda: solve(sources=[Channel(sys.argv[1])], specs=["alpha"], platforms=["linux-64", "noarch"]))
"""
RUNS = 30
"""Without the settling wait about one run in seven crashed: all 30 pass by chance once in a hundred."""


def test_a_process_that_solves_exits_cleanly(conda_channel: Path, tmp_path: Path) -> None:
    script = tmp_path / "solve.py"
    script.write_text(SOLVE_AND_EXIT)
    codes = [
        subprocess.run(
            [sys.executable, str(script), str(conda_channel)], capture_output=True, check=False
        ).returncode
        for _ in range(RUNS)
    ]
    assert codes == [0] * RUNS
