"""Moving many files: a bounded pool of workers, retries with back-off, deadlines, one error.

Every folder transfer (``upload_folder``, ``download_folder``, ``storage cp -r``) is a list of
single-object :class:`Job` s run by :func:`run_jobs`:

* at most ``sdk.storage.transfer.max_workers`` (or ``--jobs``) at once;
* each job retried on :class:`~clearml_core.storage.errors.TransientStorageError` only — up to
  ``sdk.storage.transfer.retries`` more times, waiting ``backoff_sec``, then twice that, … (or
  what the server asked for in ``Retry-After``); any other error fails the job at once;
* each job given ``sdk.storage.transfer.timeout_sec`` (``MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT``
  wins when set, as in MLflow) from its start, retries included; a job still running then is
  reported as timed out;
* failures collected, never swallowed: when any job fails, :class:`TransferError` lists them all
  (the callers that ClearML lets ``silence_errors`` log them instead).

Progress goes to stderr on a terminal only, so pipes and logs stay clean.
"""

from __future__ import annotations

import fnmatch
import io
import logging
import os
import queue
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO, TypeVar

from clearml_core.progress import ProgressLine, progress_wanted
from clearml_core.storage.errors import StorageError, TransientStorageError

if TYPE_CHECKING:
    from clearml_core.config import Config
    from clearml_core.storage.driver import StorageDriver
    from clearml_core.storage.url import StorageURL

log = logging.getLogger(__name__)

T = TypeVar("T")

TIMEOUT_VARIABLE = "MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT"
_SHOWN_FAILURES = 20


@dataclass(frozen=True)
class TransferSettings:
    """``sdk.storage.transfer``: workers, retries, first back-off delay, per-file timeout."""

    max_workers: int = 16
    retries: int = 3
    backoff_sec: float = 0.5
    timeout_sec: float | None = 600.0

    @classmethod
    def from_config(cls, config: Config, environ: dict[str, str] | None = None) -> TransferSettings:
        env = os.environ if environ is None else environ
        section = "sdk.storage.transfer"
        timeout: float | None = config.get_float(f"{section}.timeout_sec", cls.timeout_sec)
        raw = env.get(TIMEOUT_VARIABLE, "").strip()
        if raw:
            try:
                timeout = float(raw)
            except ValueError:
                from clearml_core.errors import ConfigError

                raise ConfigError(f"{TIMEOUT_VARIABLE} must be a number of seconds, got {raw!r}") from None
        return cls(
            max_workers=max(1, config.get_int(f"{section}.max_workers", cls.max_workers) or 1),
            retries=max(0, _int(config.get_int(f"{section}.retries", cls.retries), cls.retries)),
            backoff_sec=max(0.0, config.get_float(f"{section}.backoff_sec", cls.backoff_sec) or 0.0),
            timeout_sec=timeout if timeout and timeout > 0 else None,
        )

    def replace(self, **changes: Any) -> TransferSettings:
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


def _int(value: int | None, default: int) -> int:
    return default if value is None else value


def transfer_settings(config: Config | None = None) -> TransferSettings:
    if config is None:
        from clearml_core.settings import get_config

        config = get_config()
    return TransferSettings.from_config(config)


# -- retries ----------------------------------------------------------------------------------


class TransferTimeoutError(TransientStorageError):
    """A transfer did not finish within its deadline."""


def backoff_delay(attempt: int, base: float, error: TransientStorageError | None = None) -> float:
    """The wait before retry ``attempt`` (1-based): what the server asked, else ``base * 2**(n-1)``.

    A little jitter (up to 10 %) keeps many workers from retrying in lock-step.
    """
    if error is not None and error.retry_after is not None:
        return max(0.0, error.retry_after)
    delay = base * (2 ** (attempt - 1))
    return delay + random.uniform(0, delay * 0.1)


def retrying(
    action: Callable[[], T],
    *,
    what: str,
    retries: int,
    backoff_sec: float,
    deadline: float | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """``action()``, retried on :class:`TransientStorageError` only; ``deadline`` is monotonic time."""
    attempt = 0
    while True:
        try:
            return action()
        except TransientStorageError as error:
            attempt += 1
            if attempt > retries:
                raise
            delay = backoff_delay(attempt, backoff_sec, error)
            if deadline is not None and time.monotonic() + delay >= deadline:
                raise
            log.debug("%s failed (%s); retry %d of %d in %.2f s", what, error, attempt, retries, delay)
            sleep(delay)


# -- jobs -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Job:
    """One object to move: what to show (``source`` → ``target``), its size, and the work.

    ``size`` is what is known before the work (a listing's size, or None); when ``run`` returns
    an ``int`` — the bytes it moved — the report's job carries that instead.
    """

    source: str
    target: str
    run: Callable[[], object]
    size: int | None = None


@dataclass(frozen=True)
class Failure:
    job: Job
    error: BaseException

    def __str__(self) -> str:
        reason = str(self.error) or type(self.error).__name__
        return f"{self.job.source} -> {self.job.target}: {reason}"


class TransferError(StorageError):
    """Some files of a folder transfer failed; ``failures`` lists every one of them."""

    def __init__(self, action: str, failures: Sequence[Failure], total: int) -> None:
        self.failures = list(failures)
        self.total = total
        lines = [f"{len(failures)} of {total} files failed to {action}:"]
        lines += [f"  {failure}" for failure in failures[:_SHOWN_FAILURES]]
        if len(failures) > _SHOWN_FAILURES:
            lines.append(f"  … and {len(failures) - _SHOWN_FAILURES} more")
        super().__init__("\n".join(lines))


@dataclass
class TransferReport:
    """What a batch of jobs did."""

    done: list[Job] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    skipped: list[Job] = field(default_factory=list)

    @property
    def bytes(self) -> int:
        return sum(job.size or 0 for job in self.done)

    def raise_for_failures(self, action: str) -> None:
        if self.failures:
            total = len(self.done) + len(self.failures)
            raise TransferError(action, self.failures, total)


class Progress:
    """``uploading 12/100 files, 3.4/120.0 MB`` on a :class:`~clearml_core.progress.ProgressLine`."""

    def __init__(
        self, action: str, total_files: int, total_bytes: int | None, stream: TextIO | None = None
    ) -> None:
        self.action = action
        self.total_files = total_files
        self.total_bytes = total_bytes
        self.files = 0
        self.bytes = 0
        self._line = ProgressLine(stream, every=0.1)
        self._lock = threading.Lock()

    wanted = staticmethod(progress_wanted)

    def advance(self, size: int | None) -> None:
        with self._lock:
            self.files += 1
            self.bytes += size or 0
            text = f"{self.action} {self.files}/{self.total_files} files"
            if self.total_bytes:
                text += f", {self.bytes / 1e6:.1f}/{self.total_bytes / 1e6:.1f} MB"
            self._line.update(text, final=self.files == self.total_files)

    def close(self) -> None:
        self._line.close()


def run_jobs(
    jobs: Sequence[Job],
    *,
    settings: TransferSettings,
    workers: int | None = None,
    action: str = "transfer",
    progress: bool | None = None,
) -> TransferReport:
    """Run ``jobs`` on at most ``workers`` threads; every failure is collected, none is lost.

    Workers are daemon threads, so a job stuck past its deadline is reported as timed out and
    never keeps the process alive.
    """
    report = TransferReport()
    if not jobs:
        return report
    count = max(1, min(workers or settings.max_workers, len(jobs)))
    show = Progress.wanted() if progress is None else progress
    bar = Progress(action, len(jobs), sum(job.size or 0 for job in jobs) or None) if show else None
    pending: Iterator[Job] = iter(jobs)
    pending_lock = threading.Lock()
    results: queue.Queue[tuple[Job, BaseException | None, Any]] = queue.Queue()
    started: dict[int, tuple[Job, float]] = {}
    stop = threading.Event()

    def one(job: Job) -> tuple[BaseException | None, Any]:
        deadline = None if settings.timeout_sec is None else time.monotonic() + settings.timeout_sec
        try:
            result = retrying(
                job.run,
                what=f"{action} {job.source}",
                retries=settings.retries,
                backoff_sec=settings.backoff_sec,
                deadline=deadline,
            )
        except Exception as error:
            return error, None
        return None, result

    def worker() -> None:
        ident = threading.get_ident()
        while not stop.is_set():
            with pending_lock:
                job = next(pending, None)
            if job is None:
                return
            started[ident] = (job, time.monotonic())
            error, result = one(job)
            started.pop(ident, None)
            results.put((job, error, result))

    def start_worker() -> None:
        threading.Thread(target=worker, name="clearml-transfer", daemon=True).start()

    for _ in range(count):
        start_worker()
    finished = 0
    abandoned: set[int] = set()
    order = {id(job): index for index, job in enumerate(jobs)}
    try:
        while finished < len(jobs):
            try:
                job, error, result = results.get(timeout=0.5)
            except queue.Empty:
                expired = _expire(started, abandoned, settings, report, bar)
                finished += expired
                for _ in range(expired):
                    start_worker()  # the stuck one stays stuck; keep the pool at its size
                continue
            if id(job) in abandoned:
                continue  # its timeout was already reported
            finished += 1
            if error is None:
                if isinstance(result, int) and not isinstance(result, bool):
                    moved = replace(job, size=result)  # what really moved, not what was listed
                    order[id(moved)] = order[id(job)]
                    job = moved
                report.done.append(job)
            else:
                report.failures.append(Failure(job, error))
            if bar is not None:
                bar.advance(job.size)
    finally:
        stop.set()
        if bar is not None:
            bar.close()
    report.done.sort(key=lambda job: order[id(job)])
    report.failures.sort(key=lambda failure: order[id(failure.job)])
    return report


def _expire(
    started: dict[int, tuple[Job, float]],
    abandoned: set[int],
    settings: TransferSettings,
    report: TransferReport,
    bar: Progress | None,
) -> int:
    """Report jobs running past their deadline (plus a grace second) as timed out."""
    if settings.timeout_sec is None:
        return 0
    expired = 0
    now = time.monotonic()
    for job, since in list(started.values()):
        if id(job) in abandoned or now - since <= settings.timeout_sec + 1.0:
            continue
        abandoned.add(id(job))
        report.failures.append(
            Failure(job, TransferTimeoutError(f"timed out after {settings.timeout_sec:g} s"))
        )
        expired += 1
        if bar is not None:
            bar.advance(None)
    return expired


# -- planning folder transfers ----------------------------------------------------------------


def matches(wildcard: str | None, relative: str, full: str | None = None) -> bool:
    """ClearML's ``match_wildcard``: a glob on the file name, the relative path or the full URL."""
    if not wildcard:
        return True
    name = relative.rpartition("/")[2]
    return (
        fnmatch.fnmatch(name, wildcard)
        or fnmatch.fnmatch(relative, wildcard)
        or (full is not None and fnmatch.fnmatch(full, wildcard))
    )


@dataclass(frozen=True)
class SourceFile:
    """One object found under a source folder."""

    url: StorageURL
    relative: str
    size: int | None


def walk(source: StorageURL, driver: StorageDriver | None = None) -> Iterable[SourceFile]:
    """Every object under the folder ``source``, with its path relative to it."""
    folder = source.as_folder()
    if folder.is_local:
        root = folder.local_path
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            for name in sorted(filenames):
                path = Path(dirpath) / name
                if not path.is_file():
                    continue
                relative = path.relative_to(root).as_posix()
                yield SourceFile(folder.join(relative), relative, path.stat().st_size)
        return
    if driver is None:
        from clearml_core.storage.backends import driver_for

        driver = driver_for(folder)
    for info in driver.list(folder, recursive=True):
        if info.is_dir:
            continue
        try:
            relative = info.url.relative_to(folder)
        except ValueError:
            continue
        if relative:
            yield SourceFile(info.url, relative, info.size)


def copy_object(
    src: StorageURL, dst: StorageURL, config: Config | None = None, *, size: int | None = None
) -> int:
    """One object from anywhere to anywhere, by the cheapest path the two backends allow.

    Returns its size in bytes: what was read, written or (a copy inside one store) what the
    store says; ``size`` is the size a listing gave, which spares asking for it.
    """
    from clearml_core.storage import progress
    from clearml_core.storage.backends import driver_for
    from clearml_core.storage.driver import COPY_CHUNK

    if src.is_local and dst.is_local:

        def local() -> int:
            driver_for(src, config).copy(src, dst)
            return dst.local_path.stat().st_size

        return progress.track(progress.UPLOAD, dst, local, config=config)
    if src.is_local:
        source_size = src.local_path.stat().st_size if size is None else size

        def upload() -> int:
            driver_for(dst, config).upload_file(src.local_path, dst)
            return source_size

        return progress.track(progress.UPLOAD, dst, upload, total=source_size, config=config)
    if dst.is_local:
        return progress.track(
            progress.DOWNLOAD,
            src,
            lambda: driver_for(src, config).download_file(src, dst.local_path),
            config=config,
        )
    source = driver_for(src, config)
    target = driver_for(dst, config)
    if source is target and source.capabilities.server_side_copy:
        source.copy(src, dst)
        return (source.stat(dst).size or 0) if size is None else size

    def stream_copy() -> int:
        info = source.stat(src)
        with source.open_read(src) as stream:
            counted = progress.CountingReader(stream)
            target.upload_stream(
                io.BufferedReader(counted, COPY_CHUNK),
                dst,
                size=info.size,
                content_type=info.content_type,
                extra=dict(info.metadata) or None,
            )
        return counted.count

    return progress.track(progress.UPLOAD, dst, stream_copy, total=size, config=config)


def copy_jobs(
    files: Iterable[SourceFile],
    destination: StorageURL,
    *,
    config: Config | None = None,
    skip_existing: bool = False,
) -> tuple[list[Job], list[Job]]:
    """A job per file (``destination`` + its relative path); existing local targets skipped on request."""
    jobs: list[Job] = []
    skipped: list[Job] = []
    folder = destination.as_folder()
    for item in files:
        target = folder.join(item.relative)
        job = Job(
            str(item.url), str(target), _bind(copy_object, item.url, target, config, item.size), item.size
        )
        if skip_existing and target.is_local and target.local_path.exists():
            skipped.append(job)
        else:
            jobs.append(job)
    return jobs, skipped


def _bind(
    function: Callable[..., object], src: StorageURL, dst: StorageURL, config: Config | None, size: int | None
) -> Callable[[], object]:
    return lambda: function(src, dst, config, size=size)


__all__ = [
    "Failure",
    "Job",
    "Progress",
    "SourceFile",
    "TransferError",
    "TransferReport",
    "TransferSettings",
    "TransferTimeoutError",
    "backoff_delay",
    "copy_jobs",
    "copy_object",
    "matches",
    "retrying",
    "run_jobs",
    "transfer_settings",
    "walk",
]
