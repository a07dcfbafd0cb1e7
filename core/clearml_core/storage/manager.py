"""``StorageManager``: ClearML's classmethods, call for call, plus the API the CLI uses.

Switching from ClearML is changing the import::

    from clearml_core import StorageManager          # was: from clearml import StorageManager

    path = StorageManager.get_local_copy("s3://bucket/data/train.zip")   # extracted folder
    StorageManager.upload_folder("./outputs", "s3://bucket/run-42/")

The ClearML methods keep ClearML's return conventions (``get_local_copy`` and ``download_file``
return ``None`` on a failed download, after logging why; ``exists_file`` answers False on error).
Folder transfers differ on purpose: a file that cannot be moved is never skipped silently — they
raise one :class:`~clearml_core.storage.transfer.TransferError` listing every failure, unless the
caller passes ``silence_errors``. The modern methods (:meth:`StorageManager.open`, ``copy``,
``delete``, ``ls``, ``stat``, ``get``) raise.

Importing this module is cheap: the URL parser, drivers, cache and SQLite load on first use.
"""

from __future__ import annotations

import builtins
import io
from typing import TYPE_CHECKING, Any, BinaryIO, cast

# Only what costs nothing to import is imported here (``from clearml_core import StorageManager``
# is a benchmark target); the URL parser, drivers, transfers, archives, the cache and the
# progress reports, even pathlib and logging, are imported where they are used.
from clearml_core.errors import UserError
from clearml_core.storage import resolution
from clearml_core.storage.errors import ObjectNotFoundError, StorageError, UnsupportedOperationError
from clearml_core.storage.resolution import describe_url

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from clearml_core.storage.driver import ObjectInfo
    from clearml_core.storage.transfer import TransferReport
    from clearml_core.storage.url import StorageURL

__all__ = ["StorageManager", "describe_url"]


def _log() -> Any:
    import logging

    return logging.getLogger("clearml_core.storage.manager")


def _expected_empty(url: StorageURL) -> bool:
    """Whether the object really is empty (ClearML's zero-size check lets those through)."""

    try:
        return resolution.driver(url).stat(url).size == 0
    except StorageError:
        return False


class StorageManager:
    """Download, cache, upload and list files on any storage, with ClearML's calls."""

    # -- ClearML's classmethods ---------------------------------------------------------------
    @classmethod
    def get_local_copy(
        cls,
        remote_url: str,
        cache_context: str | None = None,
        extract_archive: bool = True,
        name: str | None = None,
        force_download: bool = False,
    ) -> str | None:
        """A local path holding the object at ``remote_url``, downloaded into the cache if needed.

        Direct-access URLs (``file://`` by default) are returned as they are, never copied. With
        ``extract_archive`` a .zip / .tar / .tar.gz / .tgz comes back as the folder it was
        extracted to (once; later calls reuse it). ``name`` tells several extractions of one
        archive apart. Returns ``None`` when the download fails (the reason is logged); an
        unsafe or corrupt archive raises.
        """
        state = resolution.current()
        resolved = state.resolve(remote_url, cache_context)
        path = resolved.entry_path
        plain = path is not None and not force_download and not (extract_archive and resolved.is_archive)
        if plain and path is not None and state.cache.lookup(path):
            return str(path)  # the common hit: no parsing, no index, a stat and a utime
        from clearml_core.storage.archive import ArchiveError

        try:
            local = cls._local_copy(
                state, resolved, cache_context, extract_archive, name, force_download, missing=plain
            )
            return str(local)
        except ArchiveError:
            raise
        except (StorageError, UserError, OSError) as error:
            _log().error("could not get a local copy of %s: %s", resolved.url, error)
            return None

    @classmethod
    def get_stream(cls, remote_url: str, chunk_size: int | None = None) -> Iterator[bytes] | None:
        """The object's bytes as an iterator of chunks, read from the storage as they are asked for.

        Nothing is written to disk or to the cache. ``chunk_size`` is the chunks' size in bytes
        (default 1 MiB; the last one may be shorter). ``None`` when the object cannot be opened
        (the reason is logged); an error half-way raises from the iterator.
        """

        try:
            url = resolution.parse(remote_url)
            stream = resolution.driver(url).open_read(url)
        except (StorageError, UserError, OSError) as error:
            _log().error("could not stream %s: %s", remote_url, error)
            return None
        return _chunks(stream, url, chunk_size)

    @classmethod
    def upload_file(
        cls, local_file: str, remote_url: str, wait_for_upload: bool = True, retries: int | None = None
    ) -> str:
        """Upload one file to ``remote_url`` (the full target, including its name).

        Retries transient failures ``retries`` times (default ``sdk.network.file_upload_retries``).
        With ``wait_for_upload=False`` the upload runs in the background — the process waits for
        it before exiting — and failures are logged. Returns the remote URL.
        """
        from pathlib import Path

        source = Path(local_file).expanduser()
        if not source.is_file():
            raise ObjectNotFoundError(f"cannot upload {source}: no such file")
        target = resolution.parse(remote_url)
        if retries is None:
            retries = resolution.current().config.get_int("sdk.network.file_upload_retries", None)
        settings = resolution.transfer_settings(retries=retries)

        def upload() -> None:
            from clearml_core.storage import progress
            from clearml_core.storage.transfer import retrying

            size = source.stat().st_size

            def once() -> int:
                resolution.driver(target).upload_file(source, target)
                return size

            retrying(
                lambda: progress.track(progress.UPLOAD, target, once, total=size),
                what=f"upload {source}",
                retries=settings.retries,
                backoff_sec=settings.backoff_sec,
            )

        if wait_for_upload:
            upload()
        else:
            _background().submit(_logged(upload, f"background upload of {source} to {target}"))
        return remote_url

    @classmethod
    def upload_folder(
        cls, local_folder: str, remote_url: str, match_wildcard: str | None = None, retries: int | None = None
    ) -> str:
        """Upload a folder recursively: ``local_folder/sub/f`` becomes ``remote_url/sub/f``.

        ``match_wildcard`` (``*.json``) picks files by name or relative path. Raises
        :class:`~clearml_core.storage.transfer.TransferError` listing every file that failed.
        Returns ``remote_url``.
        """
        from pathlib import Path

        from clearml_core.storage.transfer import copy_jobs, matches, run_jobs, walk
        from clearml_core.storage.url import parse_url

        folder = Path(local_folder).expanduser()
        if not folder.is_dir():
            raise ObjectNotFoundError(f"cannot upload the folder {folder}: no such folder")
        target = resolution.parse(remote_url)
        files = [
            f for f in walk(parse_url(folder.absolute()).as_folder()) if matches(match_wildcard, f.relative)
        ]
        jobs, _ = copy_jobs(files, target, config=resolution.current().config)
        report = run_jobs(jobs, settings=resolution.transfer_settings(retries=retries), action="upload")
        report.raise_for_failures(f"upload from {folder} to {target}")
        return remote_url

    @classmethod
    def download_file(
        cls,
        remote_url: str,
        local_folder: str | None = None,
        overwrite: bool = False,
        skip_zero_size_check: bool = False,
        silence_errors: bool = False,
    ) -> str | None:
        """Download to ``local_folder`` keeping the remote path: ``s3://b/sub/f`` → ``<folder>/sub/f``.

        Without ``local_folder`` the cache folder is used. An existing file is kept unless
        ``overwrite``. An empty download is an error unless ``skip_zero_size_check`` or the object
        is empty. Returns the local path, or ``None`` on failure (logged unless ``silence_errors``).
        """

        try:
            url = resolution.parse(remote_url)
            target = cls._download_target(url, local_folder)
            return str(cls._download_one(url, target, overwrite, skip_zero_size_check))
        except (StorageError, UserError, OSError) as error:
            if not silence_errors:
                _log().error("could not download %s: %s", remote_url, error)
            return None

    @classmethod
    def download_folder(
        cls,
        remote_url: str,
        local_folder: str | None = None,
        match_wildcard: str | None = None,
        overwrite: bool = False,
        skip_zero_size_check: bool = False,
        silence_errors: bool = False,
        max_workers: int | None = None,
    ) -> str | None:
        """Download every object under ``remote_url``, keeping remote paths under ``local_folder``.

        As in ClearML, ``s3://bucket/sub/file`` lands at ``<local_folder>/sub/file``. Existing
        files are kept unless ``overwrite``. Failures raise one
        :class:`~clearml_core.storage.transfer.TransferError` listing them, or are logged with
        ``silence_errors``. Returns the local folder.
        """
        from pathlib import Path

        from clearml_core.storage.transfer import Job, matches, run_jobs, walk

        source = resolution.parse(remote_url)
        folder = Path(local_folder).expanduser() if local_folder else resolution.current().cache.folder(None)
        folder.mkdir(parents=True, exist_ok=True)
        jobs = []
        for item in walk(source, None if source.is_local else resolution.driver(source)):
            if not matches(match_wildcard, item.relative, str(item.url)):
                continue
            target = cls._download_target(item.url, str(folder))
            jobs.append(
                Job(
                    str(item.url),
                    str(target),
                    _bind_download(item.url, target, overwrite, skip_zero_size_check),
                    item.size,
                )
            )
        if not jobs and not silence_errors:
            _log().warning(
                "no files under %s%s", source, f" match {match_wildcard}" if match_wildcard else ""
            )
        report = run_jobs(
            jobs, settings=resolution.transfer_settings(), workers=max_workers, action="download"
        )
        if report.failures:
            if not silence_errors:
                report.raise_for_failures(f"download from {source} to {folder}")
            for failure in report.failures:
                _log().warning("could not download %s", failure)
        return str(folder)

    @classmethod
    def exists_file(cls, remote_url: str) -> bool:
        """Whether ``remote_url`` is an object (False for folders, and on any error)."""
        if remote_url.endswith("/"):
            return False
        try:
            url = resolution.parse(remote_url)
            info = resolution.driver(url).stat(url)
        except Exception:
            return False
        return not info.is_dir

    @classmethod
    def get_file_size_bytes(cls, remote_url: str, silence_errors: bool = False) -> int | None:
        """The object's size in bytes, or ``None`` when it cannot be found."""
        try:
            url = resolution.parse(remote_url)
            return resolution.driver(url).stat(url).size
        except Exception as error:
            if not silence_errors:
                _log().warning("could not get the size of %s: %s", remote_url, error)
            return None

    @classmethod
    def list(
        cls,
        remote_url: str,
        return_full_path: bool = False,
        with_metadata: bool = False,
        read_hash: bool = False,
    ) -> builtins.list[Any] | None:
        """The objects under ``remote_url``, as ClearML lists them.

        On object stores ``remote_url`` is a prefix: ``s3://bucket/folder_`` lists everything
        under ``s3://bucket/folder_*/``, names relative to the bucket. A local ``remote_url``
        names a folder (with or without its trailing ``/``; never its siblings): every file below
        it, names relative to it; a missing folder (or a file) answers ``None``. With
        ``return_full_path`` names are full: ``remote_url`` (as written: ``file://`` stays) plus
        the name locally, the object's URL on object stores. ``with_metadata`` gives dicts
        (``name``, ``size``, ``last_modified``, ``etag``, ``content_type``), and ``read_hash`` adds
        ``hash`` where the object's metadata holds a ``sha256``. ``None`` when the backend cannot
        list (plain HTTP); the reason is logged.
        """
        try:
            url = resolution.parse(remote_url)
            infos = cls._folder_list(url) if url.is_local else cls._prefix_list(url)
        except Exception as error:
            _log().warning("cannot list files for %r: %s", remote_url, error)
            return None
        names: builtins.list[Any] = []
        local_prefix = remote_url.rstrip("/")
        for info in infos:
            if url.is_local:
                name = info.url.relative_to(url.as_folder())
                full = f"{local_prefix}/{name}"
            else:
                name = info.url.key
                full = str(info.url)
            entry = full if return_full_path else name
            if with_metadata:
                names.append(_metadata(info, entry, read_hash=read_hash))
            else:
                names.append(entry)
        return names

    @classmethod
    def get_metadata(
        cls, remote_url: str, return_full_path: bool = False, read_hash: bool = False
    ) -> dict[str, Any] | None:
        """``{name, size, last_modified, etag, content_type}`` of one object, ``None`` on error.

        ``read_hash`` adds ``hash`` when the object's metadata holds a ``sha256``."""
        try:
            url = resolution.parse(remote_url)
            info = resolution.driver(url).stat(url)
        except Exception as error:
            _log().warning("could not get the metadata of %s: %s", remote_url, error)
            return None
        name = (
            str(info.url.local_path)
            if url.is_local
            else (str(info.url) if return_full_path else info.url.key)
        )
        return _metadata(info, name, read_hash=read_hash)

    @classmethod
    def set_cache_file_limit(cls, cache_file_limit: int, cache_context: str | None = None) -> int:
        """Let a cache context keep at least ``cache_file_limit`` files; returns the limit in force.

        As in ClearML the limit only grows within a process. Sizes are limited separately by
        ``sdk.storage.cache.size``.
        """
        return resolution.current().cache.set_file_limit(cache_file_limit, cache_context)

    @classmethod
    def set_report_upload_chunk_size(cls, chunk_size_mb: int) -> None:
        """Log upload progress every ``chunk_size_mb`` MB from now on, for this process.

        Overrides ``sdk.storage.log.report_upload_chunk_size_mb``; the lines go to the logger
        ``clearml_core.storage.progress`` at INFO.
        """
        from clearml_core.storage import progress

        progress.set_chunk_size(progress.UPLOAD, int(chunk_size_mb))

    @classmethod
    def set_report_download_chunk_size(cls, chunk_size_mb: int) -> None:
        """Log download progress every ``chunk_size_mb`` MB from now on, for this process.

        Overrides ``sdk.storage.log.report_download_chunk_size_mb``.
        """
        from clearml_core.storage import progress

        progress.set_chunk_size(progress.DOWNLOAD, int(chunk_size_mb))

    @classmethod
    def get_files_server(cls) -> str:
        """The ClearML file server's address: ``api.files_server`` (``CLEARML_FILES_HOST``), else
        derived from the API / web server addresses as ClearML does."""
        from clearml_core.storage.servers import files_server

        return files_server(resolution.current().config)

    # -- the modern API -----------------------------------------------------------------------
    @classmethod
    def get(
        cls,
        url: str,
        *,
        cache_context: str | None = None,
        extract_archive: bool = False,
        name: str | None = None,
        force_download: bool = False,
    ) -> Path:
        """Like :meth:`get_local_copy`, but raising on failure and returning a ``Path``."""
        state = resolution.current()
        return cls._local_copy(
            state, state.resolve(url, cache_context), cache_context, extract_archive, name, force_download
        )

    @classmethod
    def open(cls, url: str, mode: str = "rb", *, encoding: str | None = None) -> Any:
        """A file object on the object: ``rb``/``r`` stream it, ``wb``/``w`` upload it on close.

        A write that leaves its ``with`` block by an exception uploads nothing.
        """

        target = resolution.parse(url)
        if mode not in ("r", "rb", "w", "wb"):
            raise ValueError(f"mode must be 'r', 'rb', 'w' or 'wb', not {mode!r}")
        if mode.startswith("r"):
            stream = resolution.driver(target).open_read(target)
            return stream if mode == "rb" else io.TextIOWrapper(stream, encoding=encoding or "utf-8")
        writer = _UploadOnClose(target)
        if mode == "wb":
            return writer
        return _TextUpload(writer, encoding=encoding or "utf-8")

    @classmethod
    def copy(
        cls,
        src: str,
        dst: str,
        *,
        recursive: bool = False,
        jobs: int | None = None,
        progress: bool | None = None,
    ) -> TransferReport:
        """Copy one object, or with ``recursive`` a folder's contents, from anywhere to anywhere.

        A destination ending in ``/`` (or an existing local folder) receives the object under its
        own name, like ``cp``. Raises :class:`~clearml_core.storage.transfer.TransferError` when
        any file fails.
        """
        from clearml_core.storage.transfer import Job, TransferReport, copy_jobs, copy_object, run_jobs, walk

        source = resolution.parse(src)
        target = resolution.parse(dst)
        config = resolution.current().config
        settings = resolution.transfer_settings()
        if recursive:
            files = list(walk(source, None if source.is_local else resolution.driver(source)))
            if not files and not cls._is_file(source):
                raise ObjectNotFoundError(f"nothing to copy: {source} is empty or does not exist")
            if files:
                work, _ = copy_jobs(files, target, config=config)
                report = run_jobs(work, settings=settings, workers=jobs, action="copy", progress=progress)
                report.raise_for_failures(f"copy from {source} to {target}")
                return report
        if source.is_folder:
            raise StorageError(f"{source} names a folder; copy it with recursive=True (storage cp -r)")
        if target.is_folder or (target.is_local and target.local_path.is_dir()):
            target = target.as_folder().join(source.name)
        job = Job(str(source), str(target), lambda: copy_object(source, target, config))
        report = run_jobs([job], settings=settings, workers=1, action="copy", progress=False)
        if report.failures:
            raise report.failures[0].error
        return report if report.done else TransferReport()

    @classmethod
    def delete(cls, url: str, *, recursive: bool = False) -> int:
        """Delete one object, or with ``recursive`` everything under a folder; returns the count."""
        target = resolution.parse(url)
        driver = resolution.driver(target)
        if recursive:
            count = int(driver.delete_folder(target.as_folder()))
            if count == 0 and cls._is_file(target):
                driver.delete(target)
                return 1
            return count
        driver.delete(target)
        return 1

    @classmethod
    def ls(cls, url: str, *, recursive: bool = False) -> builtins.list[ObjectInfo]:
        """What the folder ``url`` holds (or the object itself when ``url`` names one)."""

        target = resolution.parse(url)
        driver = resolution.driver(target)
        if not driver.capabilities.listing:
            raise UnsupportedOperationError(f"{target.scheme}:// storage cannot list ({target})")
        found = list(driver.list(target.as_folder(), recursive=recursive))
        if not found:
            try:
                info = driver.stat(target)
            except ObjectNotFoundError:
                if driver.capabilities.directories:
                    raise ObjectNotFoundError(f"{target}: no such folder or object") from None
                return []  # on object stores an empty prefix is just empty
            return [] if info.is_dir else [info]
        return sorted(found, key=lambda info: str(info.url))

    @classmethod
    def stat(cls, url: str) -> ObjectInfo:
        target = resolution.parse(url)
        return resolution.driver(target).stat(target)

    # -- internals ----------------------------------------------------------------------------
    @classmethod
    def _is_file(cls, url: StorageURL) -> bool:

        if url.is_folder:
            return False
        try:
            return not resolution.driver(url).stat(url).is_dir
        except ObjectNotFoundError:
            return False

    @classmethod
    def _local_copy(
        cls,
        state: resolution.State,
        resolved: resolution.Resolved,
        context: str | None,
        extract_archive: bool,
        name: str | None,
        force: bool,
        *,
        missing: bool = False,
    ) -> Path:
        """The local path; ``missing``: the caller just found the entry absent."""
        from clearml_core.storage.archive import archive_suffix

        url = resolved.url
        if resolved.direct:
            path = url.local_path
            if not path.exists():
                raise ObjectNotFoundError(f"{url}: no such file")
            if extract_archive and path.is_file() and archive_suffix(path.name):
                return cls._extract_direct(state, path, context, name, force)
            return path
        entry_path = resolved.entry_path
        assert entry_path is not None
        if force or missing or not state.cache.lookup(entry_path):
            driver = resolution.driver(url)
            state.cache.fetch(
                context,
                resolved.entry,
                lambda partial: _tracked_download(driver, url, partial),
                url=str(url),
                force=force,
                empty_ok=lambda: _expected_empty(url),
                missing=True,
            )
        if extract_archive and archive_suffix(resolved.entry):
            return cls._extract_cached(state, entry_path, resolved.entry, context, name, force)
        return entry_path

    @classmethod
    def _extract_cached(
        cls,
        state: resolution.State,
        archive: Path,
        entry: str,
        context: str | None,
        name: str | None,
        force: bool,
    ) -> Path:
        from clearml_core.storage.archive import extract
        from clearml_core.storage.cache import archive_folder_name

        folder = archive.parent / archive_folder_name(entry, name)
        if not force and state.cache.lookup(folder):
            return folder
        with state.cache.lock(context, entry):
            if not force and folder.is_dir():
                return folder
            _, size = extract(archive, folder, force=force)
            state.cache.add_folder(context, folder.name, size, parent=entry)
        return folder

    @classmethod
    def _extract_direct(
        cls, state: resolution.State, archive: Path, context: str | None, name: str | None, force: bool
    ) -> Path:
        """A local archive used in place is extracted into the cache, keyed by its path and version."""
        from clearml_core.storage.archive import extract
        from clearml_core.storage.cache import archive_folder_name, entry_name

        st = archive.stat()
        key = entry_name(f"{archive.absolute()}?size={st.st_size}&mtime={st.st_mtime_ns}", archive.name)
        folder_name = archive_folder_name(key, name)
        folder = state.cache.folder(context) / folder_name
        if not force and state.cache.lookup(folder):
            return folder
        with state.cache.lock(context, folder_name):
            if not force and folder.is_dir():
                return folder
            _, size = extract(archive, folder, force=force)
            state.cache.add_folder(context, folder_name, size, parent=None)
        return folder

    @staticmethod
    def _download_target(url: StorageURL, local_folder: str | None) -> Path:
        from pathlib import Path

        folder = Path(local_folder).expanduser() if local_folder else resolution.current().cache.folder(None)
        relative = url.path.lstrip("/") if not url.is_bucket else url.key
        return folder.absolute() / relative

    @staticmethod
    def _download_one(url: StorageURL, target: Path, overwrite: bool, skip_zero_size_check: bool) -> Path:
        from clearml_core.storage.cache import ZeroSizeDownloadError

        if target.exists() and not overwrite:
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        size = _tracked_download(resolution.driver(url), url, target)
        if size == 0 and not skip_zero_size_check and not _expected_empty(url):
            target.unlink(missing_ok=True)
            raise ZeroSizeDownloadError(
                f"downloading {url} produced an empty file; pass skip_zero_size_check=True if it really is empty"
            )
        return target

    @classmethod
    def _folder_list(cls, url: StorageURL) -> builtins.list[ObjectInfo]:
        """Every file below the local folder ``url`` (ClearML's local listing: no prefixes)."""

        if not url.local_path.is_dir():
            raise ObjectNotFoundError(f"{url} is not a folder")
        found = (
            info for info in resolution.driver(url).list(url.as_folder(), recursive=True) if not info.is_dir
        )
        return sorted(found, key=lambda info: str(info.url))

    @classmethod
    def _prefix_list(cls, url: StorageURL) -> builtins.list[ObjectInfo]:
        """Objects whose path starts with ``url``'s path (ClearML's prefix semantics)."""
        driver = resolution.driver(url)
        if not driver.capabilities.listing:
            raise UnsupportedOperationError(f"{url.scheme}:// storage cannot list")
        if url.is_folder:
            return sorted(
                (i for i in driver.list(url, recursive=True) if not i.is_dir), key=lambda i: str(i.url)
            )
        found: builtins.list[ObjectInfo] = []
        parent = url.parent
        stem = url.name
        for info in driver.list(parent, recursive=False):
            if not info.url.name.startswith(stem):
                continue
            if info.is_dir:
                found.extend(i for i in driver.list(info.url, recursive=True) if not i.is_dir)
            else:
                found.append(info)
        return sorted(found, key=lambda i: str(i.url))


def _metadata(info: ObjectInfo, name: str, *, read_hash: bool = False) -> dict[str, Any]:
    found = {
        "name": name,
        "size": info.size,
        "last_modified": info.mtime,
        "etag": info.etag,
        "content_type": info.content_type,
    }
    if read_hash:
        metadata = info.metadata
        if not metadata and resolution.driver(info.url).capabilities.metadata:
            metadata = resolution.driver(info.url).stat(info.url).metadata  # listings carry none: ask
        if metadata.get("sha256"):
            found["hash"] = metadata["sha256"]
    return found


def _tracked_download(driver: Any, url: StorageURL, target: Path) -> int:
    """``driver.download_file(url, target)`` with its progress reported."""
    from clearml_core.storage import progress

    size: int = progress.track(progress.DOWNLOAD, url, lambda: driver.download_file(url, target))
    return size


def _chunks(stream: Any, url: StorageURL, chunk_size: int | None) -> Iterator[bytes]:
    """``stream`` in chunks of ``chunk_size`` bytes (closed at the end), its progress reported."""
    from clearml_core.storage import progress
    from clearml_core.storage.driver import COPY_CHUNK

    size = chunk_size if chunk_size and chunk_size > 0 else COPY_CHUNK
    report = progress.Report(progress.DOWNLOAD, str(url), None, progress.chunk_size_mb(progress.DOWNLOAD))
    with stream:
        while chunk := stream.read(size):
            report.advance(len(chunk))
            yield chunk
    report.finish(None)


def _bind_download(url: StorageURL, target: Path, overwrite: bool, skip_zero: bool) -> Any:
    return lambda: StorageManager._download_one(url, target, overwrite, skip_zero)


def _logged(action: Any, what: str) -> Any:
    def run() -> None:
        try:
            action()
        except Exception as error:
            _log().error("%s failed: %s", what, error)

    return run


_background_pool: Any = None


def _background() -> Any:
    """Background uploads (``wait_for_upload=False``): joined when the interpreter exits."""
    global _background_pool
    if _background_pool is None:
        from concurrent.futures import ThreadPoolExecutor

        _background_pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="clearml-upload")
    return _background_pool


class _UploadOnClose:
    """A binary writer that spools to memory / a temp file and uploads when closed cleanly."""

    def __init__(self, url: StorageURL) -> None:
        import tempfile

        self.url = url
        self._spool = tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024)  # noqa: SIM115
        self.closed = False

    def write(self, data: bytes) -> int:
        return self._spool.write(data)

    def writable(self) -> bool:
        return True

    def readable(self) -> bool:
        return False

    def seekable(self) -> bool:
        return False

    def flush(self) -> None:
        self._spool.flush()

    def close(self, upload: bool = True) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            if upload:
                size = self._spool.tell()
                self._spool.seek(0)
                resolution.driver(self.url).upload_stream(cast(BinaryIO, self._spool), self.url, size=size)
        finally:
            self._spool.close()

    def __enter__(self) -> _UploadOnClose:
        return self

    def __exit__(self, exc_type: object, *_rest: object) -> None:
        self.close(upload=exc_type is None)


class _TextUpload:
    """Text mode over :class:`_UploadOnClose`."""

    def __init__(self, writer: _UploadOnClose, encoding: str) -> None:
        self._writer = writer
        self._encoding = encoding

    def write(self, text: str) -> int:
        self._writer.write(text.encode(self._encoding))
        return len(text)

    def close(self, upload: bool = True) -> None:
        self._writer.close(upload=upload)

    @property
    def closed(self) -> bool:
        return self._writer.closed

    def __enter__(self) -> _TextUpload:
        return self

    def __exit__(self, exc_type: object, *_rest: object) -> None:
        self.close(upload=exc_type is None)
