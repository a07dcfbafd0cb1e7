"""``flaky://``: a real storage backend (files under a folder) that fails on purpose.

Registered as a plugin by the transfer tests. Each object's first ``fail_times`` operations raise
:class:`TransientStorageError` (or, with ``permanent``, a plain :class:`StorageError`); names in
``hang`` block until ``release`` is set; with ``gather`` set, transfers wait until that many are
under way at once (at most a minute), so a test sees them overlap on a machine of any speed. It
counts attempts and the most transfers seen at once.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import ModuleType
from typing import BinaryIO

from clearml_core import StorageBackendSpec, hookimpl
from clearml_core.storage.driver import ByteRange, Capabilities, ObjectInfo, StorageDriver, write_atomically
from clearml_core.storage.errors import ObjectNotFoundError, StorageError, TransientStorageError
from clearml_core.storage.url import StorageURL


class FlakyState:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.fail_times = 0
        self.permanent = False
        self.fail_names: set[str] | None = None  # None: every object fails fail_times times
        self.hang: set[str] = set()
        self.release = threading.Event()
        self.attempts: Counter[str] = Counter()
        self.active = 0
        self.most_active = 0
        self.gather = 0
        self.lock = threading.Condition()


STATE: FlakyState | None = None


class FlakyDriver(StorageDriver):
    capabilities = Capabilities(listing=True, directories=False)

    @property
    def state(self) -> FlakyState:
        assert STATE is not None
        return STATE

    def _path(self, url: StorageURL) -> Path:
        return self.state.root / url.path.lstrip("/")

    def _attempt(self, url: StorageURL) -> None:
        state = self.state
        key = url.path.lstrip("/")
        with state.lock:
            state.attempts[key] += 1
            attempt = state.attempts[key]
            state.active += 1
            state.most_active = max(state.most_active, state.active)
            state.lock.notify_all()
            if not state.lock.wait_for(lambda: state.most_active >= state.gather, timeout=60):
                state.gather = 0  # they never all came: the others need not wait as well
                state.lock.notify_all()
        try:
            if key.rpartition("/")[2] in state.hang:
                state.release.wait(30)
            if (
                state.fail_names is None or key.rpartition("/")[2] in state.fail_names
            ) and attempt <= state.fail_times:
                if state.permanent:
                    raise StorageError(f"{url}: refused for good (attempt {attempt})")
                raise TransientStorageError(f"{url}: try again (attempt {attempt})")
        finally:
            with state.lock:
                state.active -= 1

    def open_read(self, url: StorageURL, byte_range: ByteRange | None = None) -> BinaryIO:
        self._attempt(url)
        try:
            return self._path(url).open("rb")
        except FileNotFoundError:
            raise ObjectNotFoundError(f"{url}: no such object") from None

    def upload_stream(
        self,
        stream: BinaryIO,
        url: StorageURL,
        *,
        size: int | None = None,
        content_type: str | None = None,
        extra: Mapping[str, str] | None = None,
    ) -> None:
        self._attempt(url)
        path = self._path(url)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(path, stream)

    def stat(self, url: StorageURL) -> ObjectInfo:
        path = self._path(url)
        if not path.is_file():
            raise ObjectNotFoundError(f"{url}: no such object")
        return ObjectInfo(url, size=path.stat().st_size, mtime=path.stat().st_mtime)

    def list(self, url: StorageURL, *, recursive: bool = False) -> Iterator[ObjectInfo]:
        folder = url.as_folder()
        root = self._path(folder)
        if not root.is_dir():
            return
        for path in sorted(root.rglob("*") if recursive else root.iterdir()):
            if path.is_file():
                yield ObjectInfo(folder.join(path.relative_to(root).as_posix()), size=path.stat().st_size)

    def delete(self, url: StorageURL) -> None:
        try:
            self._path(url).unlink()
        except FileNotFoundError:
            raise ObjectNotFoundError(f"{url}: no such object") from None


def plugin() -> ModuleType:
    module = ModuleType("flaky_plugin")

    @hookimpl
    def clearml_storage_backends():
        return [StorageBackendSpec(name="flaky", schemes=("flaky",), factory=f"{__name__}:FlakyDriver")]

    module.clearml_storage_backends = clearml_storage_backends  # type: ignore[attr-defined]
    return module
