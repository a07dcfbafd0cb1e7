"""The driver protocol: what every storage backend implements.

A backend (built in, an official plugin, a third party's) is a :class:`StorageDriver` subclass
named by a :class:`~clearml_core.specs.StorageBackendSpec`. The core builds drivers with
``DriverClass(config, url)`` — ``config`` the loaded clearml.conf, ``url`` the first URL seen for a
connection — and shares one instance between every URL with the same
:meth:`StorageDriver.connection_key` (by default the URL's :attr:`~StorageURL.root`: one per
bucket, server or account+container). Drivers are therefore used from many threads at once and
must be thread-safe.

A driver implements five methods — :meth:`~StorageDriver.open_read`,
:meth:`~StorageDriver.upload_stream`, :meth:`~StorageDriver.stat`, :meth:`~StorageDriver.list`,
:meth:`~StorageDriver.delete` — and declares its :class:`Capabilities`. Everything else has a
generic default built on those five, which a driver overrides when its backend does better
(multi-part uploads from a file, server-side copy, ranged downloads with resume).

Errors: a driver raises only the types in :mod:`clearml_core.storage.errors`, translating its
SDK's exceptions — :class:`ObjectNotFoundError` for a missing object, :class:`PermissionDeniedError`
for refused credentials, :class:`TransientStorageError` for anything worth retrying (the transfer
layer retries those and nothing else), :class:`StorageError` otherwise.
"""

from __future__ import annotations

import abc
import contextlib
import io
import mimetypes
import os
import secrets
from collections.abc import Hashable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from clearml_core.storage import progress
from clearml_core.storage.errors import (
    ObjectNotFoundError,
    PermissionDeniedError,
    StorageError,
    TransientStorageError,
    UnsupportedOperationError,
)
from clearml_core.storage.url import StorageURL

if TYPE_CHECKING:
    from clearml_core.config.tree import Config

__all__ = [
    "TEMP_SUFFIX",
    "ByteRange",
    "Capabilities",
    "ObjectInfo",
    "ObjectNotFoundError",
    "PermissionDeniedError",
    "StorageDriver",
    "StorageError",
    "TransientStorageError",
    "UnsupportedOperationError",
    "atomic_file",
    "guess_content_type",
    "open_range",
    "write_atomically",
]

ByteRange = tuple[int, int | None]
"""``(start, stop)``: bytes ``start`` up to but not including ``stop``; ``stop`` None reads to the end."""

COPY_CHUNK = 1024 * 1024
TEMP_SUFFIX = ".clearml-part"
"""Suffix of the temporary files atomic writes go through; listings skip them."""
_TEMP_NAME_BYTES = 200  # of the target's name in its temporary file's: with the rest, < 255


@dataclass(frozen=True)
class Capabilities:
    """What a backend can do; the conformance kit and the transfer layer trust these flags.

    ``False`` means the driver cannot (the matching kit test is skipped); a driver never declares
    ``True`` for something it only emulates badly.
    """

    ranges: bool = False
    """``open_read(url, byte_range=…)`` fetches only that range."""
    server_side_copy: bool = False
    """``copy`` happens inside the backend, no bytes through this machine."""
    streaming_upload: bool = False
    """``upload_stream`` sends data as it reads it, without knowing the size up front."""
    atomic_write: bool = False
    """A reader never sees a half-written object: it sees the old object or the new one."""
    listing: bool = True
    """``list`` works (plain HTTP servers cannot list)."""
    listing_is_consistent: bool = True
    """An object shows in ``list`` as soon as its upload returns."""
    content_type: bool = False
    """Objects keep the content type they were uploaded with, and ``stat`` returns it."""
    etag: bool = False
    """``stat`` and ``list`` return an etag that changes when the content does."""
    mtime: bool = True
    """``stat`` and ``list`` return the modification time."""
    metadata: bool = False
    """Objects keep the ``extra`` mapping they were uploaded with, and ``stat`` returns it."""
    directories: bool = False
    """Folders exist on their own (file systems); on object stores a folder is only a key prefix."""
    presign: bool = False
    """``presign`` gives a URL that works without credentials for a while."""


@dataclass(frozen=True)
class ObjectInfo:
    """What ``stat`` and ``list`` say about one object (or, with ``is_dir``, one folder)."""

    url: StorageURL
    size: int | None = None
    mtime: float | None = None
    """Modification time in seconds since the epoch (UTC)."""
    etag: str | None = None
    content_type: str | None = None
    is_dir: bool = False
    metadata: Mapping[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.url.name


def guess_content_type(url: StorageURL) -> str | None:
    """The content type a file of this name usually has (``model.json`` → ``application/json``)."""
    return mimetypes.guess_type(url.name, strict=False)[0]


class StorageDriver(abc.ABC):
    """Base class of every storage backend's driver. See the module docstring for the contract.

    Every method takes :class:`StorageURL` objects of a scheme this driver serves; the core
    parses user text with :func:`~clearml_core.storage.url.parse_url` before calling.
    """

    capabilities: Capabilities = Capabilities()
    """What this driver can do. A driver whose abilities depend on the URL sets it per instance."""

    def __init__(self, config: Config, url: StorageURL) -> None:
        self.config = config
        self.url = url

    @classmethod
    def connection_key(cls, url: StorageURL) -> Hashable:
        """URLs with equal keys share one driver instance (and its connections, credentials).

        The default, ``url.root``, gives one instance per bucket / server / container; override
        to share wider (one per S3 endpoint) or narrower.
        """
        return url.root

    # -- what every driver implements -------------------------------------------------------
    @abc.abstractmethod
    def open_read(self, url: StorageURL, byte_range: ByteRange | None = None) -> BinaryIO:
        """A readable binary stream of the object's bytes (or of ``byte_range`` of them).

        The caller closes it. Raises :class:`ObjectNotFoundError` when the object does not exist —
        at this call, not on the first read. Without ``capabilities.ranges`` a driver may serve a
        range by skipping bytes, but must still return exactly that range.
        """

    @abc.abstractmethod
    def upload_stream(
        self,
        stream: BinaryIO,
        url: StorageURL,
        *,
        size: int | None = None,
        content_type: str | None = None,
        extra: Mapping[str, str] | None = None,
    ) -> None:
        """Store everything ``stream`` yields at ``url``, replacing what is there.

        ``size`` is the byte count when the caller knows it; ``content_type`` and ``extra`` (user
        metadata) are kept where the backend can (see :class:`Capabilities`).
        """

    @abc.abstractmethod
    def stat(self, url: StorageURL) -> ObjectInfo:
        """Size, modification time and what else the backend knows about one object.

        Raises :class:`ObjectNotFoundError` when it does not exist. A file-system driver answers
        for folders too, with ``is_dir`` set.
        """

    @abc.abstractmethod
    def list(self, url: StorageURL, *, recursive: bool = False) -> Iterator[ObjectInfo]:
        """The contents of the folder ``url`` (taken as a folder even without its trailing ``/``).

        Not recursive: the objects right under it and one ``is_dir`` entry (URL ending in ``/``)
        per sub-folder. Recursive: every object below it, no folder entries. A folder that does
        not exist lists as empty. Order is unspecified.
        """

    @abc.abstractmethod
    def delete(self, url: StorageURL) -> None:
        """Delete one object; :class:`ObjectNotFoundError` when there is none."""

    # -- generic defaults ---------------------------------------------------------------------
    def upload_file(
        self,
        local_path: str | os.PathLike[str],
        url: StorageURL,
        *,
        content_type: str | None = None,
        extra: Mapping[str, str] | None = None,
    ) -> None:
        """Upload a local file; the content type is guessed from the name when not given."""
        path = Path(local_path)
        try:
            stream = path.open("rb")
        except FileNotFoundError:
            raise ObjectNotFoundError(f"cannot upload {path}: no such file") from None
        with stream:
            size = os.fstat(stream.fileno()).st_size
            self.upload_stream(
                io.BufferedReader(progress.CountingReader(stream), COPY_CHUNK),
                url,
                size=size,
                content_type=content_type or guess_content_type(url),
                extra=extra,
            )

    def download_file(
        self,
        url: StorageURL,
        local_path: str | os.PathLike[str],
        *,
        byte_range: ByteRange | None = None,
    ) -> int:
        """Download to ``local_path`` and return the byte count.

        The file appears whole or not at all: bytes go to a temporary file in the same folder,
        renamed over ``local_path`` when complete. Parent folders are created.
        """
        target = Path(local_path)
        with self.open_read(url, byte_range) as source:  # a missing object fails before any mkdir
            target.parent.mkdir(parents=True, exist_ok=True)
            return write_atomically(target, source)

    def exists(self, url: StorageURL) -> bool:
        """Whether an object (or, on file systems, a folder) is at ``url``."""
        try:
            self.stat(url)
        except ObjectNotFoundError:
            return False
        return True

    def copy(self, src: StorageURL, dst: StorageURL) -> None:
        """Copy one object within this backend; by default its bytes pass through this machine."""
        info = self.stat(src)
        with self.open_read(src) as stream:
            self.upload_stream(
                stream,
                dst,
                size=info.size,
                content_type=info.content_type,
                extra=dict(info.metadata) or None,
            )

    def delete_folder(self, url: StorageURL) -> int:
        """Delete every object under the folder ``url``; returns how many were deleted."""
        count = 0
        for info in list(self.list(url.as_folder(), recursive=True)):
            if info.is_dir:
                continue
            with contextlib.suppress(ObjectNotFoundError):
                self.delete(info.url)
                count += 1
        return count

    def presign(self, url: StorageURL, *, method: str = "get", expires: int = 3600) -> str:
        """A URL that allows ``method`` on the object without credentials for ``expires`` seconds."""
        raise UnsupportedOperationError(f"{url.scheme}:// storage cannot presign URLs ({url})")

    def close(self) -> None:  # noqa: B027  (optional hook; most drivers hold nothing to release)
        """Release connections; the driver cache calls it when it forgets the driver."""


def temp_sibling(target: Path) -> tuple[int, Path]:
    """A new empty file beside ``target``, ``.<name>.<random>.clearml-part``, open for writing.

    Its mode is 0666 less the umask, as for any new file (``cp``, ``open``), so the file renamed
    over ``target`` gets the permissions a plain write would have given it; ``tempfile.mkstemp``
    would make it 0600 whatever the umask. The name keeps up to 200 bytes of ``target``'s, so
    whoever finds a leftover can tell whose it was.
    """
    name = os.fsdecode(os.fsencode(target.name)[:_TEMP_NAME_BYTES])
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        temp = target.parent / f".{name}.{secrets.token_hex(4)}{TEMP_SUFFIX}"
        try:
            return os.open(temp, flags, 0o666), temp
        except FileExistsError:
            continue
    raise FileExistsError(f"cannot create a temporary file beside {target}")


@contextlib.contextmanager
def atomic_file(target: Path) -> Iterator[BinaryIO]:
    """A file opened for writing that replaces ``target`` whole when the block ends without error.

    Bytes go to a temporary sibling (:func:`temp_sibling`, which listings skip), renamed over
    ``target`` at the end; on any error the temporary file is removed and ``target`` is left as
    it was. The folder of ``target`` must exist.
    """
    fd, temp_name = temp_sibling(target)
    try:
        with os.fdopen(fd, "wb") as out:
            yield out
        os.replace(temp_name, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp_name)
        raise


def write_atomically(target: Path, source: BinaryIO, *, chunk_size: int = COPY_CHUNK) -> int:
    """Copy ``source`` into ``target`` through a temporary sibling and an atomic rename."""
    written = 0
    with atomic_file(target) as out:
        while True:
            chunk = source.read(chunk_size)
            if not chunk:
                break
            out.write(chunk)
            written += len(chunk)
            progress.advance(len(chunk))
    return written


class LimitedReader(io.RawIOBase):
    """At most ``limit`` bytes of ``stream`` (which it closes): a range of a seekable file."""

    def __init__(self, stream: BinaryIO, limit: int | None) -> None:
        self._stream = stream
        self._left = limit

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        view = memoryview(buffer).cast("B")
        size = len(view) if self._left is None else min(len(view), self._left)
        if size <= 0:
            return 0
        data = self._stream.read(size)
        view[: len(data)] = data
        if self._left is not None:
            self._left -= len(data)
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._stream.close()
        super().close()


def open_range(stream: BinaryIO, byte_range: ByteRange | None) -> BinaryIO:
    """``stream`` (positioned at 0) limited to ``byte_range``, by seeking or by skipping bytes."""
    if byte_range is None:
        return stream
    start, stop = byte_range
    if start < 0 or (stop is not None and stop < start):
        stream.close()
        raise ValueError(f"invalid byte range {byte_range!r}")
    if start:
        try:
            stream.seek(start)
        except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
            left = start
            while left > 0:
                skipped = stream.read(min(left, COPY_CHUNK))
                if not skipped:
                    break
                left -= len(skipped)
    reader = LimitedReader(stream, None if stop is None else stop - start)
    return io.BufferedReader(reader, COPY_CHUNK)
