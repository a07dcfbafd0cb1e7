"""Running installers: every output line into the build's log, stoppable, never outliving the agent.

:class:`BuildLog` is what a package manager writes to and runs commands through. Each line an
installer prints goes to ``write(stream, line)`` (the task log in the agent; a file and the
terminal for ``agent build``); the last lines are kept so a failure can be summed up in one
reason. A command runs in its own process group, is killed with its group when the build is
aborted, and on Linux dies with the agent (``PR_SET_PDEATHSIG``): an installer orphaned by a
``kill -9`` of the agent cannot go on writing into an environment another agent rebuilds.

URL passwords are masked in the command lines the log shows; package managers pass index URLs
through environment variables, so they stay out of process listings too.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from clearml_core.runners.output import read_lines
from clearml_core.runners.prctl import die_with_parent

TAIL_LINES = 60
_PASSWORD_IN_URL = re.compile(r"(?P<head>[a-zA-Z][a-zA-Z0-9+.-]*://[^:/@\s]+:)[^@\s/]+@")


class BuildAborted(Exception):
    """The build was asked to stop (the task was aborted, the daemon is stopping)."""


class BuildFailed(Exception):
    """The environment cannot be built; the message is the one reason that goes into the task record."""


def mask_urls(text: str) -> str:
    """``https://user:secret@host`` → ``https://user:****@host``."""
    return _PASSWORD_IN_URL.sub(r"\g<head>****@", text)


@dataclass(frozen=True)
class CommandResult:
    """How an installer command ended and what it said last."""

    argv: tuple[str, ...]
    code: int
    tail: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return self.code == 0

    def error_summary(self, limit: int = 400) -> str:
        """The installer's own explanation of the failure, on one line.

        pip says ``ERROR: …``; uv ``error: …`` followed by ``cause: …`` lines (``\u00d7 …`` /
        ``╰─▶ …`` on a terminal). Without any, the last lines mentioning an error, else the last
        line, else the exit code.
        """
        lines = [line.strip() for line in self.tail if line.strip()]
        picked: list[str] = []
        for index, line in enumerate(lines):
            if not _ERROR_START.match(line):
                continue
            parts = [_ERROR_START.sub("", line)]
            for follow in lines[index + 1 : index + 5]:
                if not _ERROR_FOLLOW.match(follow):
                    break
                parts.append(_ERROR_FOLLOW.sub("", follow))
            picked.append(": ".join(part for part in parts if part))
        if not picked:
            picked = [line for line in lines if "error" in line.lower() or "failed" in line.lower()][-2:]
        if not picked and lines:
            picked = [lines[-1]]
        summary = "; ".join(dict.fromkeys(p for p in picked if p)) or f"exit code {self.code}"
        summary = _LONG_PATH.sub(_shorten_path, mask_urls(re.sub(r"\s+", " ", summary)))
        if len(summary) <= limit:
            return summary
        head = limit // 3  # the cause is usually at the end: keep both ends
        return summary[:head] + " … " + summary[-(limit - head - 3) :]


_LONG_PATH = re.compile(r"(?<![\w:/])/(?:[^\s/:'\"]+/){3,}[^\s/:'\"]*")


def _shorten_path(match: re.Match[str]) -> str:
    parts = match.group(0).rstrip("/").split("/")
    return match.group(0) if len(match.group(0)) <= 60 else "…/" + "/".join(parts[-2:])


_ERROR_START = re.compile(r"^(?:error:|ERROR:|\u00d7)\s*")
_ERROR_FOLLOW = re.compile(r"^(?:cause:|caused by:|╰─▶|│|\|)\s*", re.IGNORECASE)


def _die_with_parent() -> None:
    die_with_parent(int(signal.SIGKILL))


class BuildLog:
    """Where one environment build writes, and how it runs commands.

    ``write(stream, line)`` receives every line (``stream`` is ``agent`` for the builder's own
    lines, ``stdout``/``stderr`` for the installers'). ``should_stop()`` returns a reason when the
    build must stop, else None/"". ``progress`` (optional) is told each line too, to draw a status
    line on a terminal.
    """

    def __init__(
        self,
        write: Callable[[str, str], None],
        *,
        should_stop: Callable[[], str | None] | None = None,
        progress: Callable[[str, str], None] | None = None,
        poll_interval: float = 0.05,
        kill_grace: float = 2.0,
    ) -> None:
        self._write = write
        self._should_stop = should_stop
        self._progress = progress
        self._poll = poll_interval
        self._grace = kill_grace
        self._lock = threading.Lock()
        self.keep_fds: tuple[int, ...] = ()
        """File descriptors every command inherits (the cache entry's lock while it is built)."""

    def info(self, message: str) -> None:
        """A line from the agent itself."""
        self._emit("agent", f"clearml-core: {message}")

    def _emit(self, stream: str, line: str) -> None:
        with self._lock:
            self._write(stream, line)
            if self._progress is not None:
                self._progress(stream, line)

    def stop_reason(self) -> str | None:
        """Why the build must stop now, or None."""
        return (self._should_stop() or None) if self._should_stop is not None else None

    def check(self) -> None:
        """Raise :class:`BuildAborted` when the build should stop."""
        reason = self.stop_reason()
        if reason:
            raise BuildAborted(reason)

    def run(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        what: str = "",
        keep_fds: Iterable[int] = (),
        show: bool = True,
    ) -> CommandResult:
        """Run ``argv``, its output (stdout and stderr) line by line into the log.

        ``keep_fds`` stay open in the child (a lock it must hold while it runs). Raises
        :class:`BuildAborted` after killing the command's process group when the build is stopped,
        and :class:`BuildFailed` when the program cannot start.
        """
        self.check()
        if show:
            self.info("$ " + mask_urls(" ".join(_quote(arg) for arg in argv)))
        tail: deque[str] = deque(maxlen=TAIL_LINES)

        def emit(stream: str, line: str) -> None:
            tail.append(line)
            self._emit(stream, line)

        try:
            process = subprocess.Popen(
                list(argv),
                cwd=str(cwd) if cwd is not None else None,
                env=dict(env) if env is not None else None,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
                preexec_fn=_die_with_parent,  # only a prctl call: safe in a threaded parent
                pass_fds=tuple(keep_fds) or self.keep_fds,
                close_fds=True,
            )
        except OSError as error:
            raise BuildFailed(f"{what or argv[0]} cannot start: {error.strerror or error}") from None
        assert process.stdout is not None and process.stderr is not None
        try:
            self._pump(process, emit)
            while True:  # a command that closed its output early but still runs
                try:
                    code = process.wait(self._poll)
                    break
                except subprocess.TimeoutExpired:
                    self.check()
        except BaseException:
            self._kill(process)
            raise
        return CommandResult(tuple(argv), code, tuple(tail))

    def _pump(self, process: subprocess.Popen[bytes], emit: Callable[[str, str], None]) -> None:
        """Read the command's output into lines until it closes, checking for a stop in between.

        In the calling thread, like ``communicate``: a reader thread costs ~15 ms a command in
        hand-overs, which is 10% of a small cached install.
        """
        assert process.stdout is not None and process.stderr is not None
        read_lines(
            {"stdout": process.stdout, "stderr": process.stderr}, emit, poll=self._poll, between=self.check
        )

    def _kill(self, process: subprocess.Popen[bytes]) -> None:
        if process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + self._grace
        while process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(5)


def _quote(arg: str) -> str:
    return shlex.quote(arg)
