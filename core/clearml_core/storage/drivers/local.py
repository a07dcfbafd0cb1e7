"""Local and network-mounted (NFS, SMB) files: ``file:///path`` and plain paths.

Every write goes to a temporary file in the target folder and is renamed over the target, so a
reader — another process, a crashed run's successor — sees the old file or the new one, never a
partial one. Folders exist on their own here, unlike on object stores.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat as stat_module
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import BinaryIO

from clearml_core.storage.driver import (
    TEMP_SUFFIX,
    ByteRange,
    Capabilities,
    ObjectInfo,
    StorageDriver,
    open_range,
    temp_sibling,
    write_atomically,
)
from clearml_core.storage.errors import (
    ObjectNotFoundError,
    PermissionDeniedError,
    StorageError,
    TransientStorageError,
)
from clearml_core.storage.url import StorageURL

# errors a network file system returns while it recovers; worth another try
_TRANSIENT_ERRNOS = {errno.EIO, errno.EAGAIN, errno.ETIMEDOUT, errno.ESTALE, errno.EINTR, errno.EBUSY}


@contextlib.contextmanager
def _translated(url: StorageURL, action: str) -> Iterator[None]:
    """OS errors → storage errors that name the URL."""
    try:
        yield
    except (FileNotFoundError, NotADirectoryError):
        raise ObjectNotFoundError(f"cannot {action} {url}: no such file") from None
    except PermissionError as error:
        raise PermissionDeniedError(f"cannot {action} {url}: permission denied ({error.strerror})") from None
    except OSError as error:
        if error.errno in _TRANSIENT_ERRNOS:
            raise TransientStorageError(f"cannot {action} {url}: {error.strerror}") from error
        raise StorageError(f"cannot {action} {url}: {error.strerror or error}") from error


def _etag(st: os.stat_result) -> str:
    """Changes whenever the file is rewritten: atomic replaces change the inode, writes the mtime."""
    return f"{st.st_ino:x}-{st.st_mtime_ns:x}-{st.st_size:x}"


def _info(url: StorageURL, st: os.stat_result) -> ObjectInfo:
    is_dir = stat_module.S_ISDIR(st.st_mode)
    return ObjectInfo(
        url=url.as_folder() if is_dir else url,
        size=None if is_dir else st.st_size,
        mtime=st.st_mtime,
        etag=None if is_dir else _etag(st),
        is_dir=is_dir,
    )


class LocalDriver(StorageDriver):
    """Files on this machine's file systems."""

    capabilities = Capabilities(
        ranges=True,
        server_side_copy=True,
        streaming_upload=True,
        atomic_write=True,
        listing=True,
        listing_is_consistent=True,
        content_type=False,
        etag=True,
        mtime=True,
        metadata=False,
        directories=True,
    )

    @classmethod
    def connection_key(cls, url: StorageURL) -> str:
        return "local"

    @staticmethod
    def _file(url: StorageURL, action: str) -> Path:
        if url.is_folder:
            raise StorageError(f"cannot {action} {url}: the URL names a folder (it ends with '/')")
        return url.local_path

    def open_read(self, url: StorageURL, byte_range: ByteRange | None = None) -> BinaryIO:
        path = self._file(url, "read")
        with _translated(url, "read"):
            if path.is_dir():
                raise StorageError(f"cannot read {url}: it is a folder")
            stream = path.open("rb")
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
        path = self._file(url, "write")
        with _translated(url, "write"):
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomically(path, stream)

    def upload_file(
        self,
        local_path: str | os.PathLike[str],
        url: StorageURL,
        *,
        content_type: str | None = None,
        extra: Mapping[str, str] | None = None,
    ) -> None:
        source = Path(local_path)
        if not source.is_file():
            raise ObjectNotFoundError(f"cannot upload {source}: no such file")
        self._copy_file(source, self._file(url, "write"), url)

    def download_file(
        self,
        url: StorageURL,
        local_path: str | os.PathLike[str],
        *,
        byte_range: ByteRange | None = None,
    ) -> int:
        if byte_range is not None:
            return super().download_file(url, local_path, byte_range=byte_range)
        source = self._file(url, "read")
        target = Path(local_path)
        self._copy_file(source, target, url)
        return target.stat().st_size

    def copy(self, src: StorageURL, dst: StorageURL) -> None:
        self._copy_file(self._file(src, "copy"), self._file(dst, "copy to"), dst, source_url=src)

    def _copy_file(
        self, source: Path, target: Path, url: StorageURL, source_url: StorageURL | None = None
    ) -> None:
        """``source`` → ``target`` through a temporary sibling (the kernel copies, via sendfile)."""
        with _translated(source_url or url, "copy"):
            if source.is_dir():
                raise StorageError(f"cannot copy {source_url or source}: it is a folder")
            source.stat()
        with _translated(url, "write"):
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, temp = temp_sibling(target)
            os.close(fd)
            try:
                shutil.copyfile(source, temp)
                os.replace(temp, target)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(temp)
                raise

    def stat(self, url: StorageURL) -> ObjectInfo:
        with _translated(url, "stat"):
            st = os.stat(url.local_path)
        if url.is_folder and not stat_module.S_ISDIR(st.st_mode):
            raise ObjectNotFoundError(f"cannot stat {url}: no such folder (it is a file)")
        return _info(url, st)

    def exists(self, url: StorageURL) -> bool:
        path = url.local_path
        return path.is_dir() if url.is_folder else path.exists()

    def list(self, url: StorageURL, *, recursive: bool = False) -> Iterator[ObjectInfo]:
        folder = url.as_folder()
        root = folder.local_path
        if not root.is_dir():
            return
        if not recursive:
            with _translated(folder, "list"), os.scandir(root) as entries:
                found = [entry for entry in entries if not entry.name.endswith(TEMP_SUFFIX)]
            for entry in found:
                with contextlib.suppress(FileNotFoundError):  # deleted while we list
                    yield _info(folder.join(entry.name), entry.stat())
            return
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            relative = os.path.relpath(dirpath, root)
            prefix = "" if relative == "." else relative.replace(os.sep, "/") + "/"
            for name in sorted(filenames):
                if name.endswith(TEMP_SUFFIX):
                    continue
                with contextlib.suppress(FileNotFoundError):
                    st = os.stat(os.path.join(dirpath, name))
                    if stat_module.S_ISREG(st.st_mode):
                        yield _info(folder.join(prefix + name), st)

    def delete(self, url: StorageURL) -> None:
        path = self._file(url, "delete")
        with _translated(url, "delete"):
            if path.is_dir():
                raise StorageError(f"cannot delete {url}: it is a folder; delete it recursively")
            path.unlink()

    def delete_folder(self, url: StorageURL) -> int:
        root = url.as_folder().local_path
        if not root.is_dir():
            return 0
        count = sum(len(files) for _dir, _dirs, files in os.walk(root))
        with _translated(url, "delete"):
            shutil.rmtree(root)
        return count


__all__ = ["LocalDriver"]
