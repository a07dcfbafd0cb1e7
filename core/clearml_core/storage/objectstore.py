"""A base class for drivers of bucket-style object stores: S3, Azure Blob, GCS and the like.

Such a driver works out, per URL, a *target* — where the object is (bucket, key, endpoint) and
who may touch it (credentials, a shared client) — and sends requests for it. What is left is the
same on every object store, and :class:`ObjectStoreDriver` does it once:

* a target is an :class:`ObjectTarget`, whose :meth:`~ObjectTarget.fail` turns an SDK error into
  the storage error that names what was being done to which URL;
* targets are resolved once per *scope* (a bucket and its configuration entry, say) and shared
  by every key in it: :attr:`ObjectStoreDriver.scopes`, a :class:`~clearml_core.storage.scopes.ScopeMemo`;
* uploads follow one template: a stream of unknown size is probed one byte past what the store
  takes in a single request, so a small stream is one request and a large one streams on with
  its probed head first; a local file is opened and sent with its size. A subclass implements
  only :meth:`~ObjectStoreDriver.upload_object`;
* a whole-object download makes the target's folder and calls
  :meth:`~ObjectStoreDriver.download_object` (ranges take the generic path); ``copy`` resolves
  and checks both URLs and asks :meth:`~ObjectStoreDriver.copy_object` for a server-side copy,
  streaming the bytes where the store cannot; :meth:`~ObjectStoreDriver.empty_range` checks the
  byte range ``open_read`` is given;
* ``stat`` and ``list`` answers are built with :func:`object_info` and :class:`KeyListing`;
* an SDK's download (a body with ``read``, an iterator of chunks) becomes a raw stream whose read
  errors are translated like any other with :class:`SDKReader`.

A subclass still implements :meth:`~clearml_core.storage.driver.StorageDriver.open_read`,
``stat``, ``list`` and ``delete`` (and overrides ``delete_folder`` and ``presign`` where the
store does better), translating every SDK error as :mod:`clearml_core.storage.driver` asks.
"""

from __future__ import annotations

import abc
import contextlib
import datetime as dt
import io
import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, ClassVar, Generic, TypeVar

from clearml_core.storage.driver import (
    COPY_CHUNK,
    ByteRange,
    Capabilities,
    ObjectInfo,
    StorageDriver,
    guess_content_type,
    write_atomically,
)
from clearml_core.storage.errors import ObjectNotFoundError
from clearml_core.storage.scopes import ScopeMemo
from clearml_core.storage.streams import PrefixedReader, read_upto
from clearml_core.storage.url import StorageURL

if TYPE_CHECKING:
    from clearml_core.config.tree import Config

__all__ = [
    "OBJECT_STORE_CAPABILITIES",
    "KeyListing",
    "ObjectStoreDriver",
    "ObjectTarget",
    "SDKReader",
    "clean_etag",
    "object_info",
    "timestamp",
]

TargetT = TypeVar("TargetT")

OBJECT_STORE_CAPABILITIES = Capabilities(
    ranges=True,
    server_side_copy=True,
    streaming_upload=True,
    atomic_write=True,
    listing=True,
    listing_is_consistent=True,
    content_type=True,
    etag=True,
    mtime=True,
    metadata=True,
    directories=False,
    presign=True,
)
"""What a full-featured object store offers (S3, Azure Blob, GCS): everything but real folders.

Declare it only when your driver really does all of it; the conformance kit checks every flag.
"""


def timestamp(value: Any) -> float | None:
    """Seconds since the epoch of a ``datetime`` an SDK returns; None for anything else (no date)."""
    return value.timestamp() if isinstance(value, dt.datetime) else None


def clean_etag(value: Any) -> str | None:
    """An etag as ``stat`` and ``list`` report it: without HTTP's quotes; None when there is none."""
    return str(value or "").strip('"') or None


def object_info(
    url: StorageURL,
    *,
    size: Any,
    modified: Any,
    etag: Any,
    content_type: str | None = None,
    metadata: Mapping[str, str] | None = None,
) -> ObjectInfo:
    """An :class:`ObjectInfo` from the raw fields an SDK returns (``size`` None counts as 0)."""
    return ObjectInfo(
        url=url,
        size=int(size or 0),
        mtime=timestamp(modified),
        etag=clean_etag(etag),
        content_type=content_type,
        metadata=dict(metadata or {}),
    )


class KeyListing:
    """The entries of one ``list`` call: keys a store returns for a prefix, as URLs under the folder.

    ``prefix`` is the folder's key (``runs/42/``); a key the store lists (``runs/42/m.pt``) becomes
    the folder's URL with that key in place of the prefix, so a URL that carries more than the
    key in its path (an account in Azurite's path-style URLs) keeps it.
    """

    def __init__(self, folder: StorageURL, prefix: str) -> None:
        self.folder = folder
        self._in_url = folder.path[: len(folder.path) - len(prefix)] if prefix else folder.path

    def url(self, key: str) -> StorageURL:
        """The URL of a listed key (or of a sub-folder, its key ending in ``/``)."""
        return self.folder.with_path(self._in_url + key)

    def sub_folder(self, key: str) -> ObjectInfo:
        """The ``is_dir`` entry of a sub-folder (a common prefix, ending in ``/``)."""
        return ObjectInfo(url=self.url(key), is_dir=True)

    def object(self, key: str, *, size: Any, modified: Any, etag: Any) -> ObjectInfo:
        """The entry of one listed object, from the fields the store's listing gives."""
        return object_info(self.url(key), size=size, modified=modified, etag=etag)


class ObjectTarget:
    """Base of what :meth:`ObjectStoreDriver.target` resolves: where the object is, and how an
    error about it reads.

    A subclass (a frozen dataclass, as the official plugins write it) has a ``location`` whose
    ``url`` names the object, sets :attr:`translate_error` to the backend's translation of SDK
    errors, and returns from :meth:`error_context` the details its messages need (endpoint,
    account, who is asking); it adds whatever its requests need (credentials, a client).
    """

    location: Any
    translate_error: ClassVar[Callable[..., Exception]]
    """``translate_error(error, doing, **error_context)``: the storage error to raise; ``doing``
    is ``"<what> <url>"`` (``"read s3://bucket/key"``). Set it with ``staticmethod``."""

    def error_context(self) -> Mapping[str, Any]:
        """Keyword arguments of :attr:`translate_error` beside the error and what was being done."""
        return {}

    def fail(self, error: BaseException, what: str) -> Exception:
        """The storage error to raise for ``error`` while doing ``what`` (``"read"``, ``"delete"``)."""
        return self.translate_error(error, f"{what} {self.location.url}", **self.error_context())


class SDKReader(io.RawIOBase):
    """An SDK's download as a raw stream whose read errors become storage errors.

    ``read(size)`` returns up to ``size`` bytes (nothing at the end); ``fail(error)`` is the
    storage error to raise for an SDK error (a target's translation, naming what was being done
    to which URL); ``close`` lets the SDK's stream go. Wrap it in ``io.BufferedReader`` to hand
    it out of ``open_read``.
    """

    def __init__(
        self,
        read: Callable[[int], bytes | memoryview],
        fail: Callable[[BaseException], Exception],
        close: Callable[[], object] | None = None,
    ) -> None:
        self._read = read
        self._fail = fail
        self._close = close

    @classmethod
    def from_chunks(
        cls,
        chunks: Iterator[bytes],
        fail: Callable[[BaseException], Exception],
        close: Callable[[], object] | None = None,
    ) -> SDKReader:
        """A reader of an SDK's chunks, whatever their sizes."""
        left = memoryview(b"")

        def read(size: int) -> memoryview:
            nonlocal left
            while not left:
                chunk = next(chunks, None)
                if chunk is None:
                    return left
                left = memoryview(chunk)
            part, left = left[:size], left[size:]
            return part

        return cls(read, fail, close)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        try:
            data = self._read(len(view))
        except Exception as error:
            raise self._fail(error) from error
        view[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed and self._close is not None:
            with contextlib.suppress(Exception):
                self._close()
        super().close()


class ObjectStoreDriver(StorageDriver, Generic[TargetT]):
    """Base class of bucket-style object-store drivers; ``TargetT`` is the driver's resolved target.

    A subclass implements :meth:`target` (keeping what it resolves in :attr:`scopes`),
    :meth:`single_request_limit` and :meth:`upload_object`, may override :meth:`check_object`,
    :meth:`download_object` and :meth:`copy_object`, and implements the reads, ``stat``, ``list``
    and ``delete`` of :class:`StorageDriver`.
    """

    probe_known_size: bool = False
    """Probe a stream of known size too when that size is above :meth:`single_request_limit`.

    By default a stream whose size the caller gives goes to :meth:`upload_object` with that size.
    A store whose large uploads take a stream of unknown length anyway (S3's managed upload) may
    set this: the stream is then probed, and one that ends early still goes in one request.
    """

    def __init__(self, config: Config, url: StorageURL) -> None:
        super().__init__(config, url)
        self.scopes: ScopeMemo[Any] = ScopeMemo()
        """What :meth:`target` resolves, kept per scope (``self.scopes.get(scope, resolve)``)."""

    # -- what a subclass implements ----------------------------------------------------------
    @abc.abstractmethod
    def target(self, url: StorageURL) -> TargetT:
        """Everything needed to send requests for ``url``; resolve the costly part once per scope.

        Raise the backend's ``MissingCredentialsError`` (a ``UserError``) when no resolver of the
        chain has credentials for the URL.
        """

    def check_object(self, target: TargetT) -> None:
        """Raise :class:`ObjectNotFoundError` when ``target`` names no object (only a bucket)."""

    @abc.abstractmethod
    def single_request_limit(self, target: TargetT) -> int:
        """The largest object :meth:`upload_object` sends in one request; a stream of unknown
        size is probed one byte further."""

    @abc.abstractmethod
    def upload_object(
        self,
        target: TargetT,
        data: bytes | BinaryIO,
        size: int | None,
        content_type: str | None,
        extra: Mapping[str, str] | None,
    ) -> None:
        """Store ``data`` at ``target``, replacing what is there; translate errors.

        ``data`` is ``bytes`` (a probed stream that fits one request; ``size`` is its length), an
        open local file or a caller's stream of ``size`` bytes, or, with ``size`` None, a stream
        longer than :meth:`single_request_limit` to send as the store's multi-part upload.
        ``content_type`` is already guessed from the name when the caller gave none; ``extra`` is
        user metadata.
        """

    # -- the template ------------------------------------------------------------------------
    def object_target(self, url: StorageURL) -> TargetT:
        """:meth:`target` of a URL that must name an object (checked with :meth:`check_object`)."""
        target = self.target(url)
        self.check_object(target)
        return target

    def copy(self, src: StorageURL, dst: StorageURL) -> None:
        """Inside the store through :meth:`copy_object` where it can; else the bytes pass through
        this machine. Both URLs are resolved before either is checked."""
        source, target = self.target(src), self.target(dst)
        self.check_object(source)
        self.check_object(target)
        if not self.copy_object(source, target, src, dst):
            super().copy(src, dst)

    def copy_object(self, source: TargetT, target: TargetT, src: StorageURL, dst: StorageURL) -> bool:
        """Copy ``src`` to ``dst`` inside the store and return True, or return False where it cannot
        (two endpoints or two sets of credentials): :meth:`copy` then streams the bytes."""
        return False

    def empty_range(self, url: StorageURL, byte_range: ByteRange | None) -> bool:
        """Whether ``byte_range`` asks for no bytes at all, of an object that must still exist.

        For :meth:`open_read`: raises :class:`ValueError` for an invalid range, and (through
        ``stat``) :class:`ObjectNotFoundError` for an empty range of a missing object.
        """
        if byte_range is None:
            return False
        start, stop = byte_range
        if start < 0 or (stop is not None and stop < start):
            raise ValueError(f"invalid byte range {byte_range!r}")
        if stop is None or stop != start:
            return False
        self.stat(url)
        return True

    def download_file(
        self,
        url: StorageURL,
        local_path: str | os.PathLike[str],
        *,
        byte_range: ByteRange | None = None,
    ) -> int:
        """A whole object goes to :meth:`download_object`, after its folder is made; a range
        takes the generic path."""
        if byte_range is not None:
            return super().download_file(url, local_path, byte_range=byte_range)
        target = self.object_target(url)
        destination = Path(local_path)
        destination.parent.mkdir(parents=True, exist_ok=True)
        return self.download_object(target, url, destination)

    def download_object(self, target: TargetT, url: StorageURL, destination: Path) -> int:
        """Download the whole object into ``destination`` (whole or not at all: write it through
        :func:`~clearml_core.storage.driver.atomic_file`) and return the byte count.

        The default streams :meth:`open_read`; override it with the store's parallel or verified
        download.
        """
        with self.open_read(url) as source:
            return write_atomically(destination, source)

    def upload_stream(
        self,
        stream: BinaryIO,
        url: StorageURL,
        *,
        size: int | None = None,
        content_type: str | None = None,
        extra: Mapping[str, str] | None = None,
    ) -> None:
        """A stream of unknown size (or, with :attr:`probe_known_size`, one above the limit) is
        probed: one request when it fits :meth:`single_request_limit`, else the rest streams on."""
        target = self.object_target(url)
        content_type = content_type or guess_content_type(url)
        limit = self.single_request_limit(target)
        if size is not None and (size <= limit or not self.probe_known_size):
            self.upload_object(target, stream, size, content_type, extra)
            return
        head = read_upto(stream, limit + 1)
        if len(head) <= limit:
            self.upload_object(target, head, len(head), content_type, extra)
            return
        rest = io.BufferedReader(PrefixedReader(head, stream), COPY_CHUNK)
        self.upload_object(target, rest, None, content_type, extra)

    def upload_file(
        self,
        local_path: str | os.PathLike[str],
        url: StorageURL,
        *,
        content_type: str | None = None,
        extra: Mapping[str, str] | None = None,
    ) -> None:
        """Upload a local file with its size; the URL is checked before the file is opened."""
        target = self.object_target(url)
        path = Path(local_path)
        try:
            stream = path.open("rb")
        except FileNotFoundError:
            raise ObjectNotFoundError(f"cannot upload {path}: no such file") from None
        with stream:
            size = os.fstat(stream.fileno()).st_size
            self.upload_object(target, stream, size, content_type or guess_content_type(url), extra)

    def close(self) -> None:
        """Forget the resolved targets (clients shared between drivers are the subclass's)."""
        self.scopes.clear()
