"""Helpers shared by the tests: running the CLI in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass


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
