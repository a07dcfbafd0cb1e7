"""Any scheme fsspec knows and no plugin claims: ``ftp://``, ``hdfs://``, ``memory://``, ``webdav://``, …

The driver keeps one fsspec file-system object per thread (fsspec's FTP and HDFS clients hold one
connection each and are not thread-safe). Object paths are handed to fsspec as paths, never as
URLs, so keys containing ``#`` or ``?`` survive. Options for a file system (fsspec's
``storage_options``) can be set per scheme in ``sdk.storage.fsspec.<scheme> { … }``.
"""

from __future__ import annotations

import contextlib
import datetime
import ftplib
import posixpath
import shutil
import threading
from collections.abc import Iterator, Mapping
from typing import Any, BinaryIO

from clearml_core.storage.driver import (
    COPY_CHUNK,
    TEMP_SUFFIX,
    ByteRange,
    Capabilities,
    ObjectInfo,
    StorageDriver,
    open_range,
)
from clearml_core.storage.errors import (
    BackendNotInstalledError,
    ObjectNotFoundError,
    PermissionDeniedError,
    StorageError,
    TransientStorageError,
)
from clearml_core.storage.url import StorageURL

_MTIME_KEYS = ("mtime", "modified", "modify", "LastModified", "last_modified", "updated", "created")
_ETAG_KEYS = ("ETag", "etag", "md5Hash")
_CONTENT_TYPE_KEYS = ("ContentType", "content_type", "contentType", "mimetype")


def _mtime(info: Mapping[str, Any]) -> float | None:
    for key in _MTIME_KEYS:
        value = info.get(key)
        if value is None:
            continue
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, datetime.datetime):
            if value.tzinfo is None:
                value = value.replace(tzinfo=datetime.timezone.utc)
            return value.timestamp()
        if isinstance(value, str):
            text = value.strip()
            with contextlib.suppress(ValueError):
                if len(text) >= 14 and text[:14].isdigit():  # FTP MLSD: YYYYMMDDHHMMSS[.sss], UTC
                    stamp = datetime.datetime.strptime(text[:14], "%Y%m%d%H%M%S")
                    return stamp.replace(tzinfo=datetime.timezone.utc).timestamp()
                parsed = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
                if parsed.tzinfo is None:
                    parsed = parsed.replace(tzinfo=datetime.timezone.utc)
                return parsed.timestamp()
    return None


def _first(info: Mapping[str, Any], keys: tuple[str, ...]) -> str | None:
    for key in keys:
        value = info.get(key)
        if value:
            return str(value)
    return None


@contextlib.contextmanager
def _translated(url: StorageURL, action: str) -> Iterator[None]:
    """fsspec / ftplib / socket errors → storage errors that name the (masked) URL."""
    try:
        yield
    except StorageError:
        raise
    except (FileNotFoundError, NotADirectoryError):
        raise ObjectNotFoundError(f"cannot {action} {url}: no such object") from None
    except PermissionError as error:
        raise PermissionDeniedError(f"cannot {action} {url}: permission denied ({error})") from None
    except ftplib.error_perm as error:
        text = str(error)
        lowered = text.lower()
        if text.startswith(("530", "532")) or "permission" in lowered or "denied" in lowered:
            raise PermissionDeniedError(f"cannot {action} {url}: {text}") from None
        if text.startswith("550") and "exist" not in lowered.replace("not exist", ""):
            raise ObjectNotFoundError(f"cannot {action} {url}: {text}") from None
        raise StorageError(f"cannot {action} {url}: {text}") from None
    except (ftplib.error_temp, ConnectionError, TimeoutError, EOFError) as error:
        raise TransientStorageError(f"cannot {action} {url}: {type(error).__name__}: {error}") from None
    except (OSError, ftplib.Error) as error:
        raise StorageError(f"cannot {action} {url}: {type(error).__name__}: {error}") from None


class FsspecDriver(StorageDriver):
    """A generic driver over an fsspec file system."""

    def __init__(self, config: Any, url: StorageURL) -> None:
        super().__init__(config, url)
        import fsspec
        from fsspec.spec import AbstractFileSystem

        self._cls: type[AbstractFileSystem] = fsspec.get_filesystem_class(url.scheme)
        options = dict(self._cls._get_kwargs_from_urls(url.reveal()))
        self._networked = bool(url.host) and "host" in options
        if config is not None:
            options.update(config.get_dict(f"sdk.storage.fsspec.{url.scheme}"))
        self._options = options
        self._local = threading.local()
        overrides = self._cls.cp_file is not AbstractFileSystem.cp_file
        self.capabilities = Capabilities(
            ranges=True,
            server_side_copy=overrides,
            streaming_upload=True,
            atomic_write=False,
            listing=True,
            listing_is_consistent=True,
            content_type=False,
            etag=False,
            mtime=url.scheme in ("ftp", "memory") or self._cls.modified is not AbstractFileSystem.modified,
            metadata=False,
            directories=False,
        )

    @property
    def fs(self) -> Any:
        """This thread's file-system object."""
        fs = getattr(self._local, "fs", None)
        if fs is None:
            try:
                fs = self._local.fs = self._cls(**self._options)
            except ImportError as error:  # a client that imports its package only when made
                needs = f"the package that provides {error.name}" if error.name else "what it needs"
                raise BackendNotInstalledError(
                    f"{self.url.scheme}:// is served through fsspec, whose client cannot load ({error}); "
                    f"install {needs}"
                ) from None
        return fs

    def _path(self, url: StorageURL) -> str:
        """The fsspec path of ``url``, without a trailing ``/``."""
        if self._networked:
            path = url.path
        else:
            path = self._cls._strip_protocol(f"{url.scheme}://{url.endpoint or ''}{url.path}")
        stripped = path.rstrip("/")
        return stripped or ("/" if path.startswith("/") else "")

    def _fresh_info(self, path: str) -> dict[str, Any]:
        """``fs.info`` past fsspec's listing cache (other threads' instances may have written)."""
        self.fs.invalidate_cache(posixpath.dirname(path))
        return dict(self.fs.info(path))

    def _info(self, url: StorageURL, info: Mapping[str, Any]) -> ObjectInfo:
        is_dir = info.get("type") == "directory"
        return ObjectInfo(
            url=url.as_folder() if is_dir else url,
            size=None if is_dir else info.get("size"),
            mtime=_mtime(info),
            etag=_first(info, _ETAG_KEYS),
            content_type=_first(info, _CONTENT_TYPE_KEYS),
            is_dir=is_dir,
        )

    def open_read(self, url: StorageURL, byte_range: ByteRange | None = None) -> BinaryIO:
        with _translated(url, "read"):
            info = self._fresh_info(self._path(url))
            if info.get("type") == "directory":
                raise StorageError(f"cannot read {url}: it is a folder")
            stream = self.fs.open(self._path(url), "rb")
        return open_range(stream, byte_range)

    def upload_stream(
        self,
        stream: BinaryIO,
        url: StorageURL,
        *,
        size: int | None = None,
        content_type: str | None = None,
        extra: Mapping[str, str] | None = None,
    ) -> None:
        if url.is_folder:
            raise StorageError(f"cannot upload to {url}: the URL names a folder (it ends with '/')")
        path = self._path(url)
        with _translated(url, "upload"):
            parent = posixpath.dirname(path)
            if parent and parent != "/":
                self._make_folder(parent)
            with self.fs.open(path, "wb") as out:
                shutil.copyfileobj(stream, out, COPY_CHUNK)

    def _make_folder(self, path: str) -> None:
        """Create ``path`` and its parents; another thread creating it at the same time is fine."""
        for attempt in range(5):
            try:
                self.fs.makedirs(path, exist_ok=True)
                return
            except (FileExistsError, NotImplementedError):
                return
            except Exception:
                # lost a race with another writer on some level of the path: look again
                self.fs.invalidate_cache()
                if self.fs.isdir(path):
                    return
                if attempt == 4:
                    raise

    def stat(self, url: StorageURL) -> ObjectInfo:
        with _translated(url, "stat"):
            info = self._fresh_info(self._path(url))
        if url.is_folder and info.get("type") != "directory":
            raise ObjectNotFoundError(f"cannot stat {url}: no such folder (it is a file)")
        return self._info(url, info)

    def list(self, url: StorageURL, *, recursive: bool = False) -> Iterator[ObjectInfo]:
        folder = url.as_folder()
        base = self._path(folder)
        with _translated(folder, "list"):
            self.fs.invalidate_cache(base)
            try:
                if not self.fs.isdir(base):
                    return
                entries = (
                    list(self.fs.find(base, detail=True, withdirs=False).values())
                    if recursive
                    else self.fs.ls(base, detail=True)
                )
            except FileNotFoundError:
                return
        prefix = base.rstrip("/") + "/"
        for entry in entries:
            name = str(entry["name"]).rstrip("/")
            if not name.startswith(prefix) and not (base == "" and name):
                continue
            relative = name[len(prefix) :] if name.startswith(prefix) else name
            if not relative or relative.rsplit("/", 1)[-1].endswith(TEMP_SUFFIX):
                continue
            is_dir = entry.get("type") == "directory"
            if recursive and is_dir:
                continue
            yield self._info(folder.join(relative + ("/" if is_dir else "")), entry)

    def delete(self, url: StorageURL) -> None:
        path = self._path(url)
        with _translated(url, "delete"):
            info = self._fresh_info(path)
            if info.get("type") == "directory":
                raise StorageError(f"cannot delete {url}: it is a folder; delete it recursively")
            self.fs.rm_file(path)

    def delete_folder(self, url: StorageURL) -> int:
        count = sum(1 for _ in self.list(url, recursive=True))
        path = self._path(url.as_folder())
        with _translated(url, "delete"), contextlib.suppress(FileNotFoundError):
            if self.fs.isdir(path):
                self.fs.rm(path, recursive=True)
        return count

    def copy(self, src: StorageURL, dst: StorageURL) -> None:
        if not self.capabilities.server_side_copy:
            super().copy(src, dst)
            return
        with _translated(src, "copy"):
            if self._fresh_info(self._path(src)).get("type") == "directory":
                raise StorageError(f"cannot copy {src}: it is a folder")
            self.fs.cp_file(self._path(src), self._path(dst))

    def close(self) -> None:
        self._local = threading.local()


__all__ = ["FsspecDriver"]
