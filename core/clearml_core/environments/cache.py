"""The environment cache: built environments kept by key, used in place, shared safely.

Layout under ``<agent.venvs_cache.path>-clearml-core`` (a folder *beside* the configured one)::

    envs/<key>/                    the environment itself (built right here: venvs cannot move)
    envs/<key>/clearml-env.json    the completion marker, written last (temp file, fsync, rename)
    locks/<key>.lock               flock: shared while a task uses the entry, exclusive to build or evict
    trash/                         entries being deleted

An entry is *usable* only when its marker exists. A build happens under the entry's exclusive
lock, so one key is built once however many agents want it; they wait and then share it. A
build that fails or is interrupted (even by ``kill -9``: the kernel drops the lock, and the
installer dies with its parent) leaves a folder without marker, which the next builder or an
eviction sweep deletes. Tasks hold a shared lock (:class:`Lease`) while they run; eviction takes
the exclusive lock without waiting, so a leased entry is never evicted. Least recently used
entries go first, when there are more than ``max_entries`` or less than
``free_space_threshold_gb`` free on the cache's disk; if the space cannot be found the
environment is built outside the cache for this task only.

The configured path is often clearml-agent's own venvs cache (its sample clearml.conf names
``~/.clearml/venvs-cache``), and clearml-agent evicts every folder it finds in there, oldest first,
as one of its entries; so nothing of this cache lives inside it (see :func:`cache_root`).

Lock files are deleted only by a holder of the exclusive lock, and every locker checks that the
file it locked is still the one at the path (:class:`~clearml_core.filelocks.SharedFileLock`), so
a deleted lock file cannot let two processes in.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from clearml_core.environments.process import BuildAborted
from clearml_core.environments.protocol import PythonEnv, canonical_json
from clearml_core.environments.python import PythonInfo
from clearml_core.filelocks import SharedFileLock

if TYPE_CHECKING:
    from clearml_core.config import Config

MARKER = "clearml-env.json"
KEY_VERSION = 1


def environment_key(manager: str, fingerprint: str, python: PythonInfo, image: str = "") -> str:
    """The cache key: package manager, its fingerprint, the interpreter and platform, the image."""
    payload = canonical_json(
        {
            "v": KEY_VERSION,
            "manager": manager,
            "fingerprint": fingerprint,
            "python": python.key(),
            "image": image,
        }
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:40]


ROOT_SUFFIX = "-clearml-core"


def cache_root(configured: str) -> Path:
    """Where the cache lives for ``agent.venvs_cache.path``: the folder beside it, with
    :data:`ROOT_SUFFIX` (``~/.clearml/venvs-cache`` → ``~/.clearml/venvs-cache-clearml-core``).

    Inside the configured folder clearml-agent would evict the cache's folders as its own entries.
    """
    path = Path(configured).expanduser().absolute()
    return path.with_name(path.name + ROOT_SUFFIX)


@dataclass
class EntryInfo:
    """One cache entry as ``cache ls`` shows it."""

    key: str
    path: Path
    complete: bool
    in_use: bool
    last_used: float
    metadata: dict[str, Any] = field(default_factory=dict)


class Lease:
    """A shared lock on a complete entry: it is not evicted or rebuilt until :meth:`release`."""

    def __init__(
        self, cache: EnvironmentCache, key: str, lock: SharedFileLock, metadata: dict[str, Any], built: bool
    ):
        self.cache = cache
        self.key = key
        self.path = cache.entry_path(key)
        self.env = PythonEnv(self.path)
        self.metadata = metadata
        self.built = built
        """True when this lease's holder built the entry (a miss), False on a hit."""
        self._lock: SharedFileLock | None = lock

    @property
    def fd(self) -> int | None:
        """The descriptor holding the entry's shared lock (None once released)."""
        return self._lock.fd if self._lock is not None else None

    def release(self, *, trim_in_background: bool = False) -> None:
        """Let the entry go; trims the cache when it holds more than ``max_entries``.

        ``trim_in_background`` deletes in a thread, so a task's end is not held up by removing
        another environment (entries go to ``trash/`` first, so an interrupted delete is swept later).
        """
        lock, self._lock = self._lock, None
        if lock is None:
            return
        lock.release()
        if len(self.cache._complete_entries()) <= self.cache.max_entries:
            return
        if trim_in_background:
            threading.Thread(target=self._trim, name="clearml-env-trim", daemon=True).start()
        else:
            self._trim()

    def _trim(self) -> None:
        with contextlib.suppress(OSError):
            self.cache.trim()

    def __enter__(self) -> Lease:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.release()


class NoRoom(Exception):
    """The cache's disk stays below ``free_space_threshold_gb`` even with every free entry evicted."""


class EnvironmentCache:
    """Built environments by key. Safe between threads, processes and agents sharing the folder."""

    def __init__(self, root: Path, *, max_entries: int = 10, free_space_gb: float = 2.0) -> None:
        self.root = Path(root).expanduser()
        self.max_entries = max(1, int(max_entries))
        self.free_space_gb = float(free_space_gb)
        self.envs = self.root / "envs"
        self.locks = self.root / "locks"
        self.trash = self.root / "trash"

    @classmethod
    def from_config(cls, config: Config) -> EnvironmentCache | None:
        """The cache ``agent.venvs_cache`` describes; None when it is off (no path, max_entries 0)."""
        path = config.get_str("agent.venvs_cache.path", "") or ""
        max_entries = config.get_int("agent.venvs_cache.max_entries", 10)
        if not path.strip() or max_entries is None or max_entries <= 0:
            return None
        free = config.get_float("agent.venvs_cache.free_space_threshold_gb", 2.0)
        return cls(cache_root(path), max_entries=max_entries, free_space_gb=free or 0.0)

    # -- paths -------------------------------------------------------------------------------
    def entry_path(self, key: str) -> Path:
        return self.envs / key

    def _marker(self, key: str) -> Path:
        return self.envs / key / MARKER

    def _lock_path(self, key: str) -> Path:
        return self.locks / f"{key}.lock"

    def _ensure_dirs(self) -> None:
        for folder in (self.envs, self.locks, self.trash):
            folder.mkdir(parents=True, exist_ok=True)

    # -- locking -----------------------------------------------------------------------------
    def _lock(
        self,
        key: str,
        *,
        exclusive: bool,
        wait: bool = True,
        should_stop: Callable[[], str | None] | None = None,
    ) -> SharedFileLock | None:
        """The key's lock, held shared or exclusive (None when ``wait`` is False and it is taken)."""

        def check_stop() -> None:
            reason = should_stop() if should_stop is not None else None
            if reason:
                raise BuildAborted(reason)

        lock = SharedFileLock(self._lock_path(key), check_stop)
        return lock if lock.acquire(exclusive=exclusive, blocking=wait) else None

    def _read_marker(self, key: str) -> dict[str, Any] | None:
        try:
            data = json.loads(self._marker(key).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) and data.get("key") == key else None

    def _touch(self, key: str) -> None:
        with contextlib.suppress(OSError):
            os.utime(self._marker(key))

    # -- lookup and build --------------------------------------------------------------------
    def lookup(self, key: str) -> Lease | None:
        """A lease on the complete entry ``key``, or None (never waits for a build)."""
        if not self._marker(key).exists():
            return None
        self._ensure_dirs()
        lock = self._lock(key, exclusive=False, wait=False)
        if lock is None:
            return None  # being built or evicted right now
        metadata = self._read_marker(key)
        if metadata is None:
            lock.release()
            return None
        self._touch(key)
        return Lease(self, key, lock, metadata, built=False)

    def acquire(
        self,
        key: str,
        build: Callable[[Path, int], dict[str, Any]],
        *,
        should_stop: Callable[[], str | None] | None = None,
        on_wait: Callable[[], None] | None = None,
    ) -> Lease:
        """A lease on entry ``key``, building it with ``build(path, lock_fd)`` when it is missing.

        ``build`` creates the environment at ``path`` (which does not exist) and returns the
        metadata to store in the marker; it may pass ``lock_fd`` to its installers so the entry
        stays locked while they run. When another process is building the same key this waits
        (calling ``on_wait`` once) and uses its result. Raises :class:`NoRoom` when the disk is
        too full to add an entry, :class:`BuildAborted` when ``should_stop`` says so, and whatever
        ``build`` raises; in every case the entry is left absent, never half built.
        """
        self._ensure_dirs()
        waited = False
        while True:
            lock = self._lock(key, exclusive=False, wait=False)
            if lock is None:
                if not waited and on_wait is not None:
                    on_wait()
                waited = True
                lock = self._lock(key, exclusive=False, should_stop=should_stop)
            assert lock is not None
            metadata = self._read_marker(key)
            if metadata is not None:
                self._touch(key)
                return Lease(self, key, lock, metadata, built=False)
            # a miss: let go and come back exclusive (another process may build it meanwhile)
            lock.release()
            lock = self._lock(key, exclusive=True, should_stop=should_stop)
            assert lock is not None and lock.fd is not None
            try:
                metadata = self._read_marker(key)
                if metadata is None:
                    metadata = self._build_locked(key, lock.fd, build)
                    built = True
                else:
                    built = False
                lock.share()  # not atomic: check the entry is still there
            except BaseException:
                lock.release()
                raise
            if self._read_marker(key) is not None:
                self._touch(key)
                return Lease(self, key, lock, metadata, built=built)
            lock.release()

    def _build_locked(
        self, key: str, fd: int, build: Callable[[Path, int], dict[str, Any]]
    ) -> dict[str, Any]:
        path = self.entry_path(key)
        self._discard(path)  # what an interrupted build left
        self.make_room(exclude={key})
        try:
            metadata = dict(build(path, fd))
            metadata.update(key=key, created=time.time())
            self._write_marker(key, metadata)
        except BaseException:
            self._discard(path)
            raise
        return metadata

    def _write_marker(self, key: str, metadata: dict[str, Any]) -> None:
        marker = self._marker(key)
        temporary = marker.with_name(f".{MARKER}.{uuid.uuid4().hex[:8]}")
        with open(temporary, "w", encoding="utf-8") as handle:
            json.dump(metadata, handle, indent=1, sort_keys=True)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, marker)  # atomic: a reader sees no marker or the whole one

    def _discard(self, path: Path) -> None:
        """Delete an entry's folder: renamed into trash first, so it vanishes at once."""
        if not path.exists():
            return
        self.trash.mkdir(parents=True, exist_ok=True)
        doomed = self.trash / f"{path.name}.{uuid.uuid4().hex[:8]}"
        try:
            os.replace(path, doomed)
        except OSError:
            doomed = path
        shutil.rmtree(doomed, ignore_errors=True)

    # -- eviction ----------------------------------------------------------------------------
    def free_gb(self) -> float:
        target = self.root if self.root.exists() else self.root.parent
        while not target.exists() and target != target.parent:
            target = target.parent
        return shutil.disk_usage(target).free / 1024**3

    def make_room(self, exclude: frozenset[str] | set[str] = frozenset()) -> None:
        """Evict least recently used free entries until one more fits; :class:`NoRoom` if space won't do."""
        self.sweep()
        entries = [e for e in self._complete_entries() if e.key not in exclude]
        entries.sort(key=lambda e: e.last_used)
        while len(entries) >= self.max_entries:
            victim = entries.pop(0)
            self.evict(victim.key)
        if self.free_space_gb <= 0:
            return
        while self.free_gb() < self.free_space_gb:
            if not entries:
                raise NoRoom(
                    f"{self.free_gb():.1f} GB free under {self.root}, agent.venvs_cache.free_space_threshold_gb "
                    f"asks for {self.free_space_gb:g} GB"
                )
            self.evict(entries.pop(0).key)

    def trim(self) -> list[str]:
        """Evict free entries beyond ``max_entries`` (least recently used first)."""
        entries = sorted(self._complete_entries(), key=lambda e: e.last_used)
        evicted: list[str] = []
        excess = len(entries) - self.max_entries
        for entry in entries:
            if excess <= 0:
                break
            if self.evict(entry.key):
                evicted.append(entry.key)
                excess -= 1
        return evicted

    def evict(self, key: str) -> bool:
        """Delete entry ``key`` unless a task uses it (or it is being built). True when deleted."""
        if not self._lock_path(key).exists() and not self.entry_path(key).exists():
            return False
        self._ensure_dirs()
        lock = self._lock(key, exclusive=True, wait=False)
        if lock is None:
            return False
        try:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._marker(key))  # unusable at once
            self._discard(self.entry_path(key))
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._lock_path(key))
        finally:
            lock.release()
        return True

    def sweep(self) -> list[str]:
        """Delete leftovers: folders without marker that nobody builds, and the trash."""
        removed: list[str] = []
        if self.trash.exists():
            for item in self.trash.iterdir():
                shutil.rmtree(item, ignore_errors=True)
        if not self.envs.exists():
            return removed
        for path in self.envs.iterdir():
            if (path / MARKER).exists() or not path.is_dir():
                continue
            if self.evict(path.name):
                removed.append(path.name)
        return removed

    def clear(self) -> list[str]:
        """Evict every entry not in use."""
        removed = [entry.key for entry in self.entries() if self.evict(entry.key)]
        self.sweep()
        return removed

    def _complete_entries(self) -> list[EntryInfo]:
        found: list[EntryInfo] = []
        if not self.envs.exists():
            return found
        for path in self.envs.iterdir():
            try:
                stamp = (path / MARKER).stat().st_mtime
            except OSError:
                continue
            found.append(EntryInfo(path.name, path, True, False, stamp))
        return found

    def entries(self) -> list[EntryInfo]:
        """Every entry, most recently used first, with whether a task uses it now."""
        found: list[EntryInfo] = []
        if not self.envs.exists():
            return found
        for path in self.envs.iterdir():
            if not path.is_dir():
                continue
            metadata = self._read_marker(path.name)
            try:
                stamp = (path / MARKER).stat().st_mtime if metadata is not None else path.stat().st_mtime
            except OSError:
                continue
            lock = self._lock(path.name, exclusive=True, wait=False) if self.locks.exists() else None
            in_use = lock is None
            if lock is not None:
                lock.release()
            found.append(EntryInfo(path.name, path, metadata is not None, in_use, stamp, metadata or {}))
        found.sort(key=lambda e: e.last_used, reverse=True)
        return found

    def __iter__(self) -> Iterator[EntryInfo]:
        return iter(self.entries())


def is_disk_full(error: BaseException) -> bool:
    return isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT)
