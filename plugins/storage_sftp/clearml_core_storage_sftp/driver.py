"""The ``sftp`` storage driver: paramiko over pooled SSH connections, atomic uploads, windowed reads.

For each URL the driver works out *where* (host, port, user, path — ``~/.ssh/config`` and
``sdk.sftp`` applied, :mod:`.settings`) and *who* (the ``sftp`` credential chain: clearml.conf,
a password in the URL, ssh's own agent and keys), then takes a channel from the pool of that
login (:mod:`.pool`). Paths are absolute (``sftp://host/data/x`` is ``/data/x``); ``/~/`` starts
a path in the login's home folder (``sftp://host/~/x``), as curl reads it.

* Uploads write a temporary sibling (``.name.<random>.clearml-part``, pipelined writes) and
  rename it over the target with ``posix-rename@openssh.com``: readers see the old file or the
  new one, never half of one. Missing parent folders are created (``mkdir -p``) on the first
  upload that needs them, never checked before (one round trip saved per file).
* Reads are windowed: a stream fetches 4 MiB at a time as pipelined requests (so memory stays
  bounded whatever the reader does), ranges start with a seek; a whole-file download prefetches
  the file with paramiko's bounded prefetch, as ``sftp get`` does.
* Folder transfers get parallelism from the transfer layer's workers: each worker holds its own
  channel, spread over up to ``sdk.sftp.max_connections`` connections.
"""

from __future__ import annotations

import contextlib
import io
import os
import posixpath
import stat as stat_module
import uuid
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import paramiko

from clearml_core.credentials.chain import Resolution, chain_for
from clearml_core.storage.driver import (
    COPY_CHUNK,
    TEMP_SUFFIX,
    ByteRange,
    Capabilities,
    ObjectInfo,
    StorageDriver,
    write_atomically,
)
from clearml_core.storage.errors import ObjectNotFoundError, StorageError
from clearml_core.storage.scopes import ScopeMemo
from clearml_core.storage.url import StorageURL
from clearml_core_storage_sftp.errors import MissingCredentialsError, is_connection_error, translate
from clearml_core_storage_sftp.jumps import jump_logins, proxy_command
from clearml_core_storage_sftp.pool import Channel, Login, SFTPPool, pool_for
from clearml_core_storage_sftp.settings import (
    ENTRIES,
    SECTION,
    Location,
    SFTPSettings,
    home_relative,
    settings_for,
)

if TYPE_CHECKING:
    from clearml_core.config import Config

READ_WINDOW = 4 * 1024 * 1024
"""Bytes a stream asks for at once (as 32 KiB requests in flight together)."""
PREFETCH_REQUESTS = 64
"""Read requests in flight for a whole-file download (paramiko's ``get`` default is unbounded)."""


@dataclass(frozen=True)
class Target:
    """Everything needed to work on the URLs of one server and login."""

    location: Location
    login: Login
    pool: SFTPPool
    resolution: Resolution


def remote_path(url: StorageURL) -> str:
    """The path the server sees: absolute, or home-relative for ``/~/…``; no trailing ``/``."""
    path = url.path or "/"
    if path == "/~" or path.startswith("/~/"):
        relative = path[3:].rstrip("/")
        return relative or "."
    trimmed = path.rstrip("/")
    return trimmed or "/"


def missing_credentials_message(url: StorageURL, resolution: Resolution, location: Location) -> str:
    tried = "; ".join(
        f"{attempt.resolver}: {attempt.note}" if attempt.note else attempt.resolver
        for attempt in resolution.attempts
    )
    return (
        f"no SSH credentials for {url} (log in as {location.login}; tried {tried or 'no resolvers'}). "
        f'To fix it, add {{ host: "{location.url.endpoint or location.host}", username: "{location.user}", '
        f'key_filename: "~/.ssh/id_ed25519" }} to {ENTRIES} in ~/clearml.conf, set {SECTION}.key_filename, '
        "add the key to the ssh agent (ssh-add), or name it as IdentityFile for the host in ~/.ssh/config"
    )


def _is_dir(attrs: paramiko.SFTPAttributes) -> bool:
    return attrs.st_mode is not None and stat_module.S_ISDIR(attrs.st_mode)


def _info(url: StorageURL, attrs: paramiko.SFTPAttributes) -> ObjectInfo:
    is_dir = _is_dir(attrs)
    return ObjectInfo(
        url=url.as_folder() if is_dir else url,
        size=None if is_dir else attrs.st_size,
        mtime=float(attrs.st_mtime) if attrs.st_mtime is not None else None,
        is_dir=is_dir,
    )


@dataclass(frozen=True)
class _Entry:
    """One name in a remote folder: its own attributes, and its target's when it is a symlink."""

    name: str
    attrs: paramiko.SFTPAttributes
    link: bool

    @property
    def is_dir(self) -> bool:
        return _is_dir(self.attrs)

    @property
    def is_file(self) -> bool:
        return self.attrs.st_mode is not None and stat_module.S_ISREG(self.attrs.st_mode)


class _RemoteReader(io.RawIOBase):
    """Bytes ``start``..``end`` of an open remote file, fetched a window at a time.

    Holds its pool channel until closed; a connection error drops the channel instead of
    returning it to the pool.
    """

    def __init__(
        self,
        handle: paramiko.SFTPFile,
        channel: Channel,
        pool: SFTPPool,
        start: int,
        end: int,
        what: str,
    ) -> None:
        self._handle = handle
        self._channel = channel
        self._pool = pool
        self._pos = start
        self._end = end
        self._what = what
        self._buffer = memoryview(b"")
        self._broken = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        if not self._buffer:
            if self._pos >= self._end:
                return 0
            want = min(READ_WINDOW, self._end - self._pos)
            try:
                data = b"".join(self._handle.readv([(self._pos, want)]))
            except Exception as error:
                self._broken = is_connection_error(error)
                raise translate(error, self._what) from None
            if not data:  # the file shrank under us
                self._end = self._pos
                return 0
            self._buffer = memoryview(data)
        count = min(len(view), len(self._buffer))
        view[:count] = self._buffer[:count]
        self._buffer = self._buffer[count:]
        self._pos += count
        return count

    def close(self) -> None:
        if not self.closed:
            try:
                if not self._broken:
                    self._handle.close()
            except Exception as error:
                self._broken = self._broken or is_connection_error(error)
            finally:
                self._pool.release(self._channel, broken=self._broken)
        super().close()


class SFTPDriver(StorageDriver):
    """Files on an SSH server, through SFTP."""

    capabilities = Capabilities(
        ranges=True,
        server_side_copy=False,
        streaming_upload=True,
        atomic_write=True,
        listing=True,
        listing_is_consistent=True,
        content_type=False,
        etag=False,
        mtime=True,
        metadata=False,
        directories=True,
        presign=False,
    )

    def __init__(self, config: Config, url: StorageURL) -> None:
        super().__init__(config, url)
        self._settings: SFTPSettings = settings_for(config)
        self._targets: ScopeMemo[Target] = ScopeMemo()

    # -- resolution -----------------------------------------------------------------------------
    def target(self, url: StorageURL) -> Target:
        """The login and pool for ``url``'s server, resolved once per server and user."""

        def resolve() -> Target:
            location = self._settings.locate(url)
            resolution = chain_for("sftp").explain(url.root, self.config)
            credentials = resolution.credentials
            if credentials is None:
                raise MissingCredentialsError(missing_credentials_message(url, resolution, location))
            login = Login.build(
                location.host,
                location.port,
                location.user,
                dict(credentials.values),
                credentials.source,
                alias=location.alias,
                via=jump_logins(self._settings, location.ssh),
                proxy_command=proxy_command(location),
            )
            return Target(location, login, pool_for(login, self._settings.pool), resolution)

        # a pool closed by reset_pools() is resolved afresh
        return self._targets.get(url.root, resolve, stale=lambda found: found.pool.closed)

    @classmethod
    def describe(cls, url: StorageURL, config: Config) -> dict[str, Any]:
        """The fields ``storage resolve`` prints for an ``sftp://`` URL (never a secret, no network)."""
        settings = settings_for(config)
        location = settings.locate(url)
        resolution = chain_for("sftp").explain(url, config)
        credentials = resolution.credentials
        values = credentials.values if credentials is not None else {}
        pool = settings.pool
        return {
            "backend": "sftp",
            "resolver": resolution.resolver,
            "source": resolution.source,
            "host": location.host,
            "port": location.port,
            "path": location.path,
            "user": location.user,
            "user_source": location.user_source,
            "port_source": location.port_source,
            "host_alias": location.alias,
            "proxy_jump": location.ssh.proxy_jump,
            "proxy_command": proxy_command(location),
            "auth": values.get("auth"),
            "key_files": [home_relative(p) for p in values.get("key_filename") or []],
            "agent": bool(values.get("allow_agent")),
            "entry": location.entry.name if location.entry is not None else None,
            "known_hosts": [home_relative(p) for p in pool.read_files()],
            "accept_new_host_keys": pool.accept_new_host_keys,
            "max_connections": pool.max_connections,
            "channels_per_connection": pool.channels_per_connection,
        }

    # -- helpers -------------------------------------------------------------------------------
    @staticmethod
    def _file(url: StorageURL, action: str) -> str:
        if url.is_folder:
            raise StorageError(f"cannot {action} {url}: the URL names a folder (it ends with '/')")
        return remote_path(url)

    @contextlib.contextmanager
    def _channel(self, target: Target, what: str) -> Iterator[paramiko.SFTPClient]:
        """A pooled channel; any error inside becomes a storage error about ``what``."""
        try:
            with target.pool.channel() as channel:
                yield channel.sftp
        except StorageError:
            raise
        except Exception as error:
            raise translate(error, what) from None

    # -- reads ---------------------------------------------------------------------------------
    def open_read(self, url: StorageURL, byte_range: ByteRange | None = None) -> BinaryIO:
        path = self._file(url, "read")
        if byte_range is not None:
            start, stop = byte_range
            if start < 0 or (stop is not None and stop < start):
                raise ValueError(f"invalid byte range {byte_range!r}")
        target = self.target(url)
        what = f"read {url}"
        channel = target.pool.acquire()
        try:
            handle = channel.sftp.open(path, "rb")
            try:
                attrs = handle.stat()
                if _is_dir(attrs):
                    raise StorageError(f"cannot read {url}: it is a folder")
            except BaseException:
                with contextlib.suppress(Exception):
                    handle.close()
                raise
        except BaseException as error:
            target.pool.release(channel, broken=is_connection_error(error))
            if isinstance(error, Exception):
                raise translate(error, what) from None
            raise
        size = attrs.st_size or 0
        start, stop = byte_range if byte_range is not None else (0, None)
        end = size if stop is None else min(stop, size)
        reader = _RemoteReader(
            handle, channel, target.pool, min(start, size), max(end, min(start, size)), what
        )
        return io.BufferedReader(reader, COPY_CHUNK)

    def download_file(
        self,
        url: StorageURL,
        local_path: str | os.PathLike[str],
        *,
        byte_range: ByteRange | None = None,
    ) -> int:
        if byte_range is not None:
            return super().download_file(url, local_path, byte_range=byte_range)
        path = self._file(url, "download")
        target = self.target(url)
        destination = Path(local_path)
        with self._channel(target, f"download {url}") as sftp, sftp.open(path, "rb") as handle:
            attrs = handle.stat()
            if _is_dir(attrs):
                raise StorageError(f"cannot download {url}: it is a folder")
            handle.prefetch(attrs.st_size or 0, max_concurrent_requests=PREFETCH_REQUESTS)
            destination.parent.mkdir(parents=True, exist_ok=True)  # only once the file is known to exist
            return write_atomically(destination, handle)

    def stat(self, url: StorageURL) -> ObjectInfo:
        target = self.target(url)
        with self._channel(target, f"stat {url}") as sftp:
            attrs = sftp.stat(remote_path(url))
        if url.is_folder and not _is_dir(attrs):
            raise ObjectNotFoundError(f"cannot stat {url}: no such folder (it is a file)")
        return _info(url, attrs)

    def _listdir(self, target: Target, path: str, what: str) -> list[_Entry]:
        """A remote folder's entries (symlinks resolved; temporary upload files left out)."""
        found: list[_Entry] = []
        with self._channel(target, what) as sftp:
            try:
                listed = sftp.listdir_attr(path)
            except FileNotFoundError:
                return []
            for attrs in listed:
                name = attrs.filename
                if name in (".", "..") or name.endswith(TEMP_SUFFIX):
                    continue
                link = attrs.st_mode is not None and stat_module.S_ISLNK(attrs.st_mode)
                if link:
                    try:
                        attrs = sftp.stat(posixpath.join(path, name))
                        attrs.filename = name
                    except FileNotFoundError:
                        continue  # a dangling link
                found.append(_Entry(name, attrs, link))
        return found

    def list(self, url: StorageURL, *, recursive: bool = False) -> Iterator[ObjectInfo]:
        folder = url.as_folder()
        target = self.target(folder)
        what = f"list {folder}"
        if not recursive:
            for entry in self._listdir(target, remote_path(folder), what):
                if entry.is_dir:
                    yield _info(folder.join(entry.name + "/"), entry.attrs)
                elif entry.is_file:
                    yield _info(folder.join(entry.name), entry.attrs)
            return
        pending = [("", remote_path(folder))]
        while pending:
            prefix, path = pending.pop()
            for entry in self._listdir(target, path, what):
                if entry.is_dir:
                    if not entry.link:  # like os.walk: symlinked folders are not followed
                        pending.append((f"{prefix}{entry.name}/", posixpath.join(path, entry.name)))
                elif entry.is_file:
                    yield _info(folder.join(prefix + entry.name), entry.attrs)

    # -- writes --------------------------------------------------------------------------------
    def upload_stream(
        self,
        stream: BinaryIO,
        url: StorageURL,
        *,
        size: int | None = None,
        content_type: str | None = None,
        extra: Mapping[str, str] | None = None,
    ) -> None:
        path = self._file(url, "upload to")
        target = self.target(url)
        folder, name = posixpath.split(path)
        temp = posixpath.join(folder, f".{name[:64]}.{uuid.uuid4().hex[:12]}{TEMP_SUFFIX}")
        with self._channel(target, f"upload to {url}") as sftp:
            handle = _create(sftp, temp, folder or ".")
            try:
                with handle:
                    handle.set_pipelined(True)
                    while chunk := stream.read(COPY_CHUNK):
                        handle.write(chunk)
                self._replace(target.pool, sftp, temp, path)
            except BaseException as error:
                if not is_connection_error(error):
                    with contextlib.suppress(Exception):
                        sftp.remove(temp)
                raise

    @staticmethod
    def _replace(pool: SFTPPool, sftp: paramiko.SFTPClient, temp: str, path: str) -> None:
        """Rename ``temp`` over ``path`` atomically where the server can (OpenSSH can)."""
        if pool.posix_rename is not False:
            try:
                sftp.posix_rename(temp, path)
                pool.posix_rename = True
                return
            except OSError as error:
                if pool.posix_rename or "unsupported" not in str(error).lower():
                    raise
                pool.posix_rename = False
        # SFTP version 3 rename never replaces: the old file goes first (not atomic)
        try:
            sftp.rename(temp, path)
        except OSError:
            with contextlib.suppress(FileNotFoundError):
                sftp.remove(path)
            sftp.rename(temp, path)

    def delete(self, url: StorageURL) -> None:
        path = self._file(url, "delete")
        target = self.target(url)
        with self._channel(target, f"delete {url}") as sftp:
            try:
                sftp.remove(path)
            except OSError as error:
                if isinstance(error, FileNotFoundError | PermissionError):
                    raise
                with contextlib.suppress(OSError):
                    if _is_dir(sftp.stat(path)):
                        raise StorageError(
                            f"cannot delete {url}: it is a folder; delete it recursively"
                        ) from None
                raise

    def delete_folder(self, url: StorageURL) -> int:
        """Delete everything under the folder and the folder itself; returns how many files went."""
        folder = url.as_folder()
        target = self.target(folder)
        what = f"delete {folder}"
        root = remote_path(folder)
        files: list[tuple[str, bool]] = []  # (path, counted)
        folders: list[str] = []
        pending = [root]
        with self._channel(target, what) as sftp:
            try:
                if not _is_dir(sftp.stat(root)):
                    return 0
            except FileNotFoundError:
                return 0
            while pending:
                path = pending.pop()
                folders.append(path)
                try:
                    listed = sftp.listdir_attr(path)
                except FileNotFoundError:
                    continue
                for attrs in listed:
                    child = posixpath.join(path, attrs.filename)
                    mode = attrs.st_mode or 0
                    if stat_module.S_ISDIR(mode):
                        pending.append(child)
                    else:
                        # counted as `list` shows them: regular files and links to files
                        counted = not attrs.filename.endswith(TEMP_SUFFIX) and (
                            stat_module.S_ISREG(mode)
                            or (stat_module.S_ISLNK(mode) and _links_to_file(sftp, child))
                        )
                        files.append((child, counted))

        def remove(item: tuple[str, bool]) -> int:
            with self._channel(target, f"delete {item[0]} in {folder}") as sftp:
                try:
                    sftp.remove(item[0])
                except FileNotFoundError:
                    return 0
            return 1 if item[1] else 0

        workers = max(1, min(self._workers(), len(files)))
        if workers == 1:
            count = sum(remove(item) for item in files)
        else:
            with ThreadPoolExecutor(workers, thread_name_prefix="sftp-delete") as pool:
                count = sum(pool.map(remove, files))
        with self._channel(target, what) as sftp:
            for path in sorted(folders, key=lambda p: p.count("/"), reverse=True):
                with contextlib.suppress(FileNotFoundError):
                    sftp.rmdir(path)
        return count

    def _workers(self) -> int:
        from clearml_core.storage.transfer import transfer_settings

        pool = self._settings.pool
        return min(
            transfer_settings(self.config).max_workers, pool.max_connections * pool.channels_per_connection
        )


def _links_to_file(sftp: paramiko.SFTPClient, path: str) -> bool:
    try:
        mode = sftp.stat(path).st_mode or 0
    except FileNotFoundError:
        return False
    return stat_module.S_ISREG(mode)


def _create(sftp: paramiko.SFTPClient, path: str, folder: str) -> paramiko.SFTPFile:
    """Open ``path`` for writing, creating its missing parent folders when the first try says so."""
    try:
        return sftp.open(path, "wb")
    except FileNotFoundError:
        _makedirs(sftp, folder)
        return sftp.open(path, "wb")


def _makedirs(sftp: paramiko.SFTPClient, folder: str) -> None:
    """``mkdir -p``: create ``folder`` and its missing parents; another uploader may race us."""
    missing: list[str] = []
    current = folder
    while current not in ("", "/", "."):
        try:
            attrs = sftp.stat(current)
        except FileNotFoundError:
            missing.append(current)
            current = posixpath.dirname(current)
            continue
        if not _is_dir(attrs):
            raise StorageError(f"cannot create the folder {folder}: {current} is a file")
        break
    for path in reversed(missing):
        try:
            sftp.mkdir(path)
        except OSError:
            try:
                attrs = sftp.stat(path)  # made meanwhile by a parallel upload?
            except FileNotFoundError:
                raise StorageError(f"cannot create the folder {path} on the server") from None
            if not _is_dir(attrs):
                raise StorageError(f"cannot create the folder {folder}: {path} is a file") from None


__all__ = ["READ_WINDOW", "SFTPDriver", "Target", "remote_path"]
