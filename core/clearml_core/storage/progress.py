"""Progress lines of single transfers, as ClearML logs them.

``Downloading: 10.00MB / 52.43MB @ 4.10MBs from s3://bucket/data.bin`` — one each time another
``sdk.storage.log.report_download_chunk_size_mb`` megabytes have come in
(``report_upload_chunk_size_mb`` going out), and one when a transfer that reported along the way
ends; a transfer smaller than one chunk logs nothing. Lines go to the logger
``clearml_core.storage.progress`` at INFO. ``StorageManager.set_report_download_chunk_size`` and
``set_report_upload_chunk_size`` override the settings for the rest of the process, as in ClearML.

Bytes are counted where they pass through clearml-core's own code (downloads written by
:func:`~clearml_core.storage.driver.write_atomically`, streams it uploads or hands out). A driver
that moves them out of its sight (parallel ranged downloads, an SDK uploading a file by name)
gets its line when it is done.
"""

from __future__ import annotations

import contextvars
import io
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, BinaryIO, TypeVar

if TYPE_CHECKING:
    from clearml_core.config import Config

log = logging.getLogger(__name__)

DOWNLOAD = "download"
UPLOAD = "upload"
DEFAULT_CHUNK_MB = 5.0
_MB = 1024.0 * 1024.0

T = TypeVar("T")

_overrides: dict[str, float] = {}
_current: contextvars.ContextVar[Report | None] = contextvars.ContextVar(
    "clearml_core_progress", default=None
)


CHUNK_SIZE_KEYS = {
    DOWNLOAD: "sdk.storage.log.report_download_chunk_size_mb",
    UPLOAD: "sdk.storage.log.report_upload_chunk_size_mb",
}
"""The setting that sizes each direction's report chunks."""


def set_chunk_size(direction: str, chunk_size_mb: float) -> None:
    """Report ``direction`` (:data:`DOWNLOAD` / :data:`UPLOAD`) transfers every ``chunk_size_mb`` MB."""
    _overrides[direction] = float(chunk_size_mb)


def chunk_size_mb(direction: str, config: Config | None = None) -> float:
    """The chunk size in force: the override, else ``sdk.storage.log.report_<direction>_chunk_size_mb``."""
    if direction in _overrides:
        return _overrides[direction]
    if config is None:
        from clearml_core.settings import get_config

        config = get_config()
    value = config.get_float(CHUNK_SIZE_KEYS[direction], DEFAULT_CHUNK_MB)
    return DEFAULT_CHUNK_MB if value is None else value


class Report:
    """The progress of one transfer; see the module docstring."""

    def __init__(self, direction: str, what: str, total: int | None, chunk_mb: float) -> None:
        self.prefix = "Downloading" if direction == DOWNLOAD else "Uploading"
        self.suffix = f"from {what}" if direction == DOWNLOAD else f"to {what}"
        self.total = total
        self.done = 0
        self.reported = 0
        self._chunk = chunk_mb * _MB
        self._since = time.monotonic()

    def advance(self, count: int) -> None:
        self.done += count
        if 0 < self._chunk <= self.done - self.reported:
            self._log()

    def finish(self, moved: int | None) -> None:
        """The transfer ended having moved ``moved`` bytes (None: as counted)."""
        if moved is not None and moved > self.done:
            self.done = moved  # moved out of sight
        if self.total is None:
            self.total = self.done
        if self._chunk > 0 and self.done > self.reported and (self.reported or self.done >= self._chunk):
            self._log()

    def _log(self) -> None:
        now = time.monotonic()
        speed = (self.done - self.reported) / _MB / max(now - self._since, 1e-6)
        total = f" / {self.total / _MB:.2f}MB" if self.total is not None else ""
        log.info("%s: %.2fMB%s @ %.2fMBs %s", self.prefix, self.done / _MB, total, speed, self.suffix)
        self.reported = self.done
        self._since = now


def track(
    direction: str,
    what: object,
    transfer: Callable[[], T],
    *,
    total: int | None = None,
    config: Config | None = None,
) -> T:
    """Run one transfer with its progress reported; an ``int`` it returns is the bytes it moved."""
    report = Report(direction, str(what), total, chunk_size_mb(direction, config))
    token = _current.set(report)
    try:
        result = transfer()
    finally:
        _current.reset(token)
    report.finish(result if isinstance(result, int) else None)
    return result


def advance(count: int) -> None:
    """``count`` more bytes of the transfer under way in this thread (if one is tracked)."""
    report = _current.get()
    if report is not None:
        report.advance(count)


class CountingReader(io.RawIOBase):
    """``stream`` read through: what passes is added to this thread's transfer and to :attr:`count`."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self._report = _current.get()
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self._stream.read(len(buffer))
        size = len(data)
        memoryview(buffer).cast("B")[:size] = data
        self.count += size
        if self._report is not None:
            self._report.advance(size)
        return size

    def close(self) -> None:
        if not self.closed:
            self._stream.close()
        super().close()


__all__ = [
    "DOWNLOAD",
    "UPLOAD",
    "CountingReader",
    "Report",
    "advance",
    "chunk_size_mb",
    "set_chunk_size",
    "track",
]
