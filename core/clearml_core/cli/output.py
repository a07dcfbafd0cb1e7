"""Everything the CLI prints goes through here, so secrets are scrubbed on the way out."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any


def echo(text: str = "", *, err: bool = False) -> None:
    from clearml_core.config.redact import redactor  # on first use: `--help` prints nothing of ours

    stream = sys.stderr if err else sys.stdout
    stream.write(redactor(text) + "\n")
    stream.flush()


def echo_json(data: Any) -> None:
    echo(json.dumps(data, indent=2, default=str, ensure_ascii=False))


def warn(message: str) -> None:
    echo(f"warning: {message}", err=True)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """A plain aligned table; the last column is not padded."""
    cells = [[str(h) for h in headers], *[["" if c is None else str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for row in cells:
        echo("  ".join(cell.ljust(widths[i]) if i < len(row) - 1 else cell for i, cell in enumerate(row)))


def is_terminal() -> bool:
    """Progress bars and prompts only on a terminal; pipes stay quiet."""
    return sys.stdout.isatty() and sys.stderr.isatty()
