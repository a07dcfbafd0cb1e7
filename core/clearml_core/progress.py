"""A progress line on a terminal, drawn with rich; nothing at all in a pipe or a log file.

``storage cp`` (and every folder transfer) shows its file and byte counts on it; ``agent build``
the latest thing the installer said. rich is imported only when a line is drawn, so a command in
a pipe, and ``--help``, never load it. ``CLEARML_CORE_NO_PROGRESS`` turns it off on terminals too.

Not to be confused with :mod:`clearml_core.storage.progress`, which logs ClearML's progress lines
of single transfers.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import Any, TextIO

NO_PROGRESS_VARIABLE = "CLEARML_CORE_NO_PROGRESS"


def progress_wanted(stream: TextIO | None = None) -> bool:
    """Whether ``stream`` (stderr by default) is a terminal that may show progress."""
    stream = stream or sys.stderr
    return bool(getattr(stream, "isatty", lambda: False)()) and os.environ.get(NO_PROGRESS_VARIABLE) is None


class ProgressLine:
    """One line on ``stream`` (stderr by default), redrawn with the latest text.

    The caller decides whether to show progress at all (:func:`progress_wanted`); a line that is
    never updated writes nothing. Redraws come at most every ``every`` seconds, except a ``final``
    one. :meth:`close` leaves the last text on its line (``keep``) or erases it.
    """

    def __init__(self, stream: TextIO | None = None, *, every: float = 0.0, keep: bool = True) -> None:
        self._stream = stream or sys.stderr
        self._every = every
        self._keep = keep
        self._lock = threading.Lock()
        self._last = float("-inf")
        self._live: Any = None

    def update(self, text: str, *, final: bool = False) -> None:
        """Show ``text`` (cut to the terminal's width) in place of what the line showed."""
        with self._lock:
            now = time.monotonic()
            if not final and now - self._last < self._every:
                return
            self._last = now
            from rich.text import Text

            line = Text(text, no_wrap=True, overflow="ellipsis", end="")
            if self._live is None:
                self._live = self._start(line)
            else:
                self._live.update(line, refresh=True)

    def _start(self, line: Any) -> Any:
        from rich.console import Console
        from rich.live import Live

        console = Console(file=self._stream, force_terminal=True, highlight=False, emoji=False)
        live = Live(
            line,
            console=console,
            auto_refresh=False,
            transient=not self._keep,
            redirect_stdout=False,
            redirect_stderr=False,
        )
        live.start(refresh=True)
        return live

    def close(self) -> None:
        """End the line: the last text stays (``keep``) or is erased; the cursor is shown again."""
        with self._lock:
            live, self._live = self._live, None
            if live is not None:
                live.stop()


__all__ = ["NO_PROGRESS_VARIABLE", "ProgressLine", "progress_wanted"]
