"""What every benchmark prints: the machine it ran on, and the table of checks with PASS/FAIL."""

from __future__ import annotations

import os
import platform
from collections.abc import Sequence

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
