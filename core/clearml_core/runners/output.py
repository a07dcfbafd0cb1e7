"""A task's output: reading pipes into lines, and the sinks lines go to.

Reading uses one thread per process with ``selectors`` over stdout and stderr, so a chatty stderr
cannot block stdout. Sinks are small and composable: a file, the console, a batching sink that
hands lines to a callback (the control plane) at most every ``interval`` seconds, and a tee.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TextIO

from clearml_core.runners.base import LogSink

MAX_LINE_BYTES = 64 * 1024
"""A line longer than this is cut into pieces, so memory stays bounded."""


@dataclass(frozen=True)
class LogLine:
    stream: str
    text: str
    time: float


def collapse_carriage_returns(text: str) -> str:
    """What a terminal would show for a line redrawn with ``\\r`` (a progress bar): its last frame."""
    if "\r" not in text:
        return text
    frames = [frame for frame in text.split("\r") if frame]
    return frames[-1] if frames else ""


def read_lines(
    pipes: dict[str, IO[bytes]],
    emit: Callable[[str, str], None],
    *,
    collapse_cr: bool = True,
    poll: float | None = None,
    between: Callable[[], None] | None = None,
) -> None:
    """Read ``pipes`` to EOF in this thread, splitting into lines and calling ``emit(stream, line)``;
    closes them. With ``poll``, ``between()`` runs at least every ``poll`` seconds while waiting
    (an abort check: what it raises stops the reading)."""
    lines = LineSplitter(emit, collapse_cr)
    selector = selectors.DefaultSelector()
    buffers: dict[str, bytearray] = {}
    try:
        for stream, pipe in pipes.items():
            os.set_blocking(pipe.fileno(), False)
            selector.register(pipe, selectors.EVENT_READ, stream)
            buffers[stream] = bytearray()
        while selector.get_map():
            for key, _events in selector.select(poll):
                stream = key.data
                try:
                    chunk = os.read(key.fd, 65536)
                except BlockingIOError:
                    continue
                except OSError:
                    chunk = b""
                buffer = buffers[stream]
                if not chunk:
                    selector.unregister(key.fileobj)
                    if buffer:
                        lines.line(stream, bytes(buffer))
                        buffer.clear()
                    continue
                buffer += chunk
                lines.split(stream, buffer)
            if between is not None:
                between()
    finally:
        selector.close()
        for pipe in pipes.values():
            with contextlib.suppress(OSError):
                pipe.close()


class LineSplitter:
    """Complete lines out of a stream's buffer, with memory bounded by :data:`MAX_LINE_BYTES`.

    ``split(stream, buffer)`` emits the complete lines of ``buffer`` and leaves the rest in it;
    ``line(stream, raw)`` emits one line (the rest of a buffer at the end of its stream).
    Readers of other sources than pipes (a container engine's log stream) use it too."""

    def __init__(self, emit: Callable[[str, str], None], collapse_cr: bool) -> None:
        self._emit = emit
        self._collapse_cr = collapse_cr

    def split(self, stream: str, buffer: bytearray) -> None:
        start = 0
        while True:
            end = buffer.find(b"\n", start)
            if end < 0:
                break
            self.line(stream, bytes(buffer[start:end]))
            start = end + 1
        del buffer[:start]
        if self._collapse_cr and b"\r" in buffer:
            # a progress bar redrawing itself: keep only the latest frame in memory
            last = buffer.rstrip(b"\r").rfind(b"\r")
            if last >= 0:
                del buffer[: last + 1]
        while len(buffer) > MAX_LINE_BYTES:
            self.line(stream, bytes(buffer[:MAX_LINE_BYTES]))
            del buffer[:MAX_LINE_BYTES]

    def line(self, stream: str, raw: bytes) -> None:
        while len(raw) > MAX_LINE_BYTES:
            self.line(stream, raw[:MAX_LINE_BYTES])
            raw = raw[MAX_LINE_BYTES:]
        text = raw.decode("utf-8", errors="replace")
        if text.endswith("\r"):
            text = text[:-1]
        if self._collapse_cr:
            text = collapse_carriage_returns(text)
        self._emit(stream, text)


class LineReader(threading.Thread):
    """:func:`read_lines` in a thread of its own (a task's output, read while the agent waits)."""

    def __init__(
        self,
        pipes: dict[str, IO[bytes]],
        emit: Callable[[str, str], None],
        *,
        collapse_cr: bool = True,
    ) -> None:
        super().__init__(name="clearml-output", daemon=True)
        self._pipes = pipes
        self._emit = emit
        self._collapse_cr = collapse_cr

    def run(self) -> None:
        read_lines(self._pipes, self._emit, collapse_cr=self._collapse_cr)


class FileSink:
    """Appends every line, stdout and stderr in the order they came, to a log file."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._file: TextIO | None = open(path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115
        self._lock = threading.Lock()

    def write(self, stream: str, line: str) -> None:
        with self._lock:
            if self._file is not None:
                self._file.write(f"{line}\n")

    def flush(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.flush()

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None


class ConsoleSink:
    """The daemon's ``--foreground`` view: task lines on the daemon's own stdout."""

    def __init__(self, prefix: str = "", stream: TextIO | None = None) -> None:
        self._prefix = prefix
        self._stream = stream
        self._lock = threading.Lock()

    def write(self, stream: str, line: str) -> None:
        from clearml_core.config.redact import redactor

        out = self._stream or sys.stdout
        with self._lock:
            out.write(f"{self._prefix}{redactor(line)}\n")
            out.flush()

    def flush(self) -> None:
        return None

    def close(self) -> None:
        return None


class BatchingSink:
    """Collects lines and hands them to ``deliver`` in batches, from a background thread.

    A batch goes out when ``interval`` seconds passed since its first line or when it holds
    ``max_batch`` lines, so a line reaches ``deliver`` within ``interval`` plus the delivery time.
    ``deliver`` failing does not lose lines: they are retried with the next batch (bounded by
    ``max_pending``, beyond which the oldest lines are dropped and counted).
    """

    def __init__(
        self,
        deliver: Callable[[Sequence[LogLine]], None],
        *,
        interval: float = 0.3,
        max_batch: int = 500,
        max_pending: int = 100_000,
        on_error: Callable[[BaseException], None] | None = None,
    ) -> None:
        self._deliver = deliver
        self._interval = interval
        self._max_batch = max_batch
        self._max_pending = max_pending
        self._on_error = on_error
        self._pending: list[LogLine] = []
        self._first_at: float | None = None
        self._cond = threading.Condition()
        self._closed = False
        self._deliver_lock = threading.Lock()
        self.dropped = 0
        self._thread = threading.Thread(target=self._loop, name="clearml-log-batches", daemon=True)
        self._thread.start()

    def write(self, stream: str, line: str) -> None:
        with self._cond:
            if self._closed:
                return
            self._pending.append(LogLine(stream, line, time.time()))
            if self._first_at is None:
                self._first_at = time.monotonic()
                self._cond.notify()
            if len(self._pending) >= self._max_batch:
                self._cond.notify()

    def _take(self) -> list[LogLine]:
        batch, self._pending, self._first_at = self._pending, [], None
        return batch

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._closed:
                    if self._first_at is None:
                        self._cond.wait()
                        continue
                    remaining = self._first_at + self._interval - time.monotonic()
                    if remaining <= 0 or len(self._pending) >= self._max_batch:
                        break
                    self._cond.wait(remaining)
                if self._closed:
                    return
                batch = self._take()
            self._send(batch)

    def _send(self, batch: list[LogLine]) -> None:
        if not batch:
            return
        with self._deliver_lock:
            try:
                self._deliver(batch)
            except Exception as error:
                with self._cond:
                    self._pending[:0] = batch
                    if self._first_at is None:
                        self._first_at = time.monotonic()
                    excess = len(self._pending) - self._max_pending
                    if excess > 0:
                        del self._pending[:excess]
                        self.dropped += excess
                if self._on_error is not None:
                    self._on_error(error)

    def flush(self) -> None:
        with self._cond:
            batch = self._take()
        self._send(batch)

    def close(self) -> None:
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._cond.notify_all()
        self._thread.join(timeout=5)
        with self._cond:
            batch = self._take()
        self._send(batch)


class TeeSink:
    """Writes every line to each of several sinks; one failing sink does not starve the others."""

    def __init__(self, *sinks: LogSink | None) -> None:
        self.sinks: list[LogSink] = [sink for sink in sinks if sink is not None]

    def add(self, sink: LogSink) -> None:
        self.sinks.append(sink)

    def write(self, stream: str, line: str) -> None:
        for sink in self.sinks:
            try:
                sink.write(stream, line)
            except Exception:  # noqa: S112  (a broken console must not stop the log file)
                continue

    def flush(self) -> None:
        for sink in self.sinks:
            try:
                sink.flush()
            except Exception:  # noqa: S112
                continue

    def close(self) -> None:
        for sink in self.sinks:
            try:
                sink.close()
            except Exception:  # noqa: S112
                continue


class MemorySink:
    """Keeps lines in memory (the last ``keep`` of them): the record's "last log lines", and tests."""

    def __init__(self, keep: int | None = None) -> None:
        self.keep = keep
        self.lines: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def write(self, stream: str, line: str) -> None:
        with self._lock:
            self.lines.append((stream, line))
            if self.keep is not None and len(self.lines) > self.keep:
                del self.lines[: len(self.lines) - self.keep]

    def texts(self) -> list[str]:
        with self._lock:
            return [line for _stream, line in self.lines]

    def flush(self) -> None:
        return None

    def close(self) -> None:
        return None
