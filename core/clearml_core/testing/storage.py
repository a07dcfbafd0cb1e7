"""The storage conformance kit: one test class every storage backend passes.

Subclass :class:`StorageContract` in your plugin's tests and give it a writable base URL::

    import pytest
    from clearml_core.testing.storage import StorageContract

    class TestMyBackend(StorageContract):
        multipart_size = 9 * 1024 * 1024      # just above the driver's multipart threshold

        @pytest.fixture
        def storage_base_url(self, my_server):
            return f"mys://{my_server.bucket}/{uuid.uuid4().hex}/"   # unique per test

The kit checks round trips (empty, small, multi-part sized, streams of unknown size), keys with
spaces and unicode (hypothesis-generated), keys with empty segments (``p//a.txt``, object stores
only), listing with and without recursion, stat and metadata,
``exists`` on missing objects, :class:`~clearml_core.storage.errors.ObjectNotFoundError` on missing
downloads, delete, overwrite, streaming and ranged reads, a folder of files, concurrent uploads,
copies, and what :class:`~clearml_core.storage.driver.Capabilities` promises. A test is skipped
only when the driver declares it cannot do what the test needs.

The kit needs pytest and hypothesis: ``pip install 'clearml-core[testing]'``. Optional fixture
``storage_config`` returns the :class:`~clearml_core.config.Config` to build the
driver with (default: the loaded clearml.conf). Class attributes tune sizes and counts.

**Error classification** (optional: for backends that speak HTTP). The kit checks that an answer
of 401 or 403 becomes :class:`~clearml_core.storage.errors.PermissionDeniedError`, 404
:class:`~clearml_core.storage.errors.ObjectNotFoundError`, 500 and 503
:class:`~clearml_core.storage.errors.TransientStorageError` — for reads, stats, uploads and
deletes — and that the transfer layer (:func:`~clearml_core.storage.transfer.retrying`) retries
the transient ones only, until the backend answers again. To opt in, put a
:class:`~clearml_core.testing.proxy.CountingProxy` in front of your test server and provide:

* ``fault_proxy``: that proxy (default None: these tests skip, saying why);
* ``fault_base_url``: a writable base URL whose requests go through the proxy (default
  ``storage_base_url``, for a backend whose every test already goes through it);
* ``fault_config``: the configuration for it (default ``storage_config``). Turn the SDK's own
  retries off here, so that each failure reaches the transfer layer at once.

::

    @pytest.fixture(scope="module")
    def memo_proxy(memo_server):
        with counting_proxy(memo_server.port) as proxy:
            yield proxy

    class TestMyBackend(StorageContract):
        @pytest.fixture
        def fault_proxy(self, memo_proxy):
            return memo_proxy

        @pytest.fixture
        def fault_base_url(self, memo_proxy, my_server):
            return f"mys://{memo_proxy.netloc}/{my_server.bucket}/{uuid.uuid4().hex}/"

The kit is one class (about 650 lines) because a plugin author subclasses one class to run it.
"""

from __future__ import annotations

import hashlib
import io
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clearml_core.storage.backends import driver_for
from clearml_core.storage.driver import ObjectInfo, StorageDriver
from clearml_core.storage.errors import (
    ObjectNotFoundError,
    PermissionDeniedError,
    StorageError,
    TransientStorageError,
)
from clearml_core.storage.transfer import retrying
from clearml_core.storage.url import StorageURL, parse_url
from clearml_core.testing.proxy import CountingProxy

__all__ = ["FaultTarget", "StorageContract", "object_names"]

# Characters a key segment may hold in the kit: letters and digits of any script, spaces and the
# punctuation people put in file names. "/" separates segments; control characters are refused by
# the URL parser.
_NAME_ALPHABET = st.characters(
    categories=("Lu", "Ll", "Lo", "Nd", "Zs"),
    include_characters="-_.,;=+!~'()[]{}@$&#%? ",
    exclude_characters="\u3000\u2028\u2029\x85\xa0",
)


def object_names() -> st.SearchStrategy[str]:
    """File names with spaces, punctuation and non-ASCII letters, as the kit generates them."""
    return (
        st.text(_NAME_ALPHABET, min_size=1, max_size=40)
        .map(str.strip)
        .filter(lambda name: name not in ("", ".", "..") and "::" not in name)
    )


def _payload(size: int, seed: int = 0) -> bytes:
    """Deterministic, incompressible-enough bytes (so a short read or a swapped block shows)."""
    block = hashlib.sha256(f"{seed}".encode()).digest() * 2048  # 64 KiB
    repeats, rest = divmod(size, len(block))
    out = bytearray()
    for index in range(repeats):
        out += hashlib.sha256(block[:32] + index.to_bytes(8, "big")).digest()[:8] + block[8:]
    out += block[:rest]
    return bytes(out)


class _Trickle(io.RawIOBase):
    """A non-seekable stream that hands out at most ``step`` bytes per read (a pipe, a socket)."""

    def __init__(self, data: bytes, step: int = 4096) -> None:
        self._data = memoryview(data)
        self._step = step

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        count = min(len(buffer), self._step, len(self._data))
        buffer[:count] = self._data[:count]
        self._data = self._data[count:]
        return count


@dataclass(frozen=True)
class FaultTarget:
    """An object that exists, behind the proxy that can answer for the backend."""

    driver: StorageDriver
    url: StorageURL
    proxy: CountingProxy


_OPERATIONS: dict[str, Callable[[StorageDriver, StorageURL], object]] = {
    "read": lambda driver, url: StorageContract._get(driver, url),
    "stat": lambda driver, url: driver.stat(url),
    "upload": lambda driver, url: StorageContract._put(driver, url, b"replaced"),
    "delete": lambda driver, url: driver.delete(url),
}


class StorageContract:
    """Conformance tests for a storage driver. Subclass it and provide ``storage_base_url``."""

    multipart_size: int = 6 * 1024 * 1024
    """Size of the large round-trip object: set it just above your driver's multi-part threshold."""
    hypothesis_examples: int = 8
    """How many generated key names the unicode test tries."""
    folder_files: int = 20
    """Files in the folder-transfer test."""
    concurrency: int = 8
    """Threads in the concurrent-upload tests."""
    consistency_timeout: float = 10.0
    """How long listings may lag behind uploads when ``listing_is_consistent`` is False."""

    # -- fixtures -----------------------------------------------------------------------------
    @pytest.fixture
    def storage_config(self) -> Any:
        """The configuration to build the driver with; None means the loaded clearml.conf."""
        return None

    @pytest.fixture
    def storage_base(self, storage_base_url: str | StorageURL) -> StorageURL:
        """The base URL as a folder."""
        return parse_url(storage_base_url).as_folder()

    @pytest.fixture
    def driver(self, storage_base: StorageURL, storage_config: Any) -> StorageDriver:
        return driver_for(storage_base, storage_config)

    # -- helpers ------------------------------------------------------------------------------
    @staticmethod
    def _put(driver: StorageDriver, url: StorageURL, data: bytes, **kwargs: Any) -> None:
        driver.upload_stream(io.BytesIO(data), url, size=len(data), **kwargs)

    @staticmethod
    def _get(driver: StorageDriver, url: StorageURL) -> bytes:
        with driver.open_read(url) as stream:
            return stream.read()

    def _listed(self, driver: StorageDriver, url: StorageURL, *, recursive: bool) -> dict[str, ObjectInfo]:
        return {info.url.relative_to(url): info for info in driver.list(url, recursive=recursive)}

    def _eventually_listed(
        self, driver: StorageDriver, url: StorageURL, expected: set[str], *, recursive: bool
    ) -> dict[str, ObjectInfo]:
        deadline = time.monotonic() + (
            0 if driver.capabilities.listing_is_consistent else self.consistency_timeout
        )
        while True:
            listed = self._listed(driver, url, recursive=recursive)
            if set(listed) == expected or time.monotonic() >= deadline:
                return listed
            time.sleep(0.2)

    @staticmethod
    def _needs(driver: StorageDriver, *flags: str) -> None:
        missing = [flag for flag in flags if not getattr(driver.capabilities, flag)]
        if missing:
            pytest.skip(f"{type(driver).__name__} declares it cannot: {', '.join(missing)}")

    @staticmethod
    def _no_secret(error: BaseException, url: StorageURL) -> None:
        if url.password and len(url.password) >= 4:
            assert url.password not in str(error), "an error message shows the URL's password"

    # -- round trips --------------------------------------------------------------------------
    def test_round_trip_empty(self, driver: StorageDriver, storage_base: StorageURL, tmp_path: Path) -> None:
        url = storage_base.join("empty.bin")
        self._put(driver, url, b"")
        assert driver.exists(url)
        assert driver.stat(url).size == 0
        assert self._get(driver, url) == b""
        local = tmp_path / "empty.bin"
        assert driver.download_file(url, local) == 0
        assert local.read_bytes() == b""
        source = tmp_path / "source-empty"
        source.write_bytes(b"")
        driver.upload_file(source, storage_base.join("empty-from-file"))
        assert driver.stat(storage_base.join("empty-from-file")).size == 0

    def test_round_trip_small(self, driver: StorageDriver, storage_base: StorageURL, tmp_path: Path) -> None:
        data = _payload(1000, seed=1)
        source = tmp_path / "small.txt"
        source.write_bytes(data)
        url = storage_base.join("dir/small.txt")
        driver.upload_file(source, url)
        local = tmp_path / "out" / "small.txt"
        assert driver.download_file(url, local) == len(data)
        assert local.read_bytes() == data
        assert self._get(driver, url) == data
        assert driver.stat(url).size == len(data)

    def test_round_trip_multipart_size(
        self, driver: StorageDriver, storage_base: StorageURL, tmp_path: Path
    ) -> None:
        data = _payload(self.multipart_size + 12345, seed=2)
        source = tmp_path / "large.bin"
        source.write_bytes(data)
        url = storage_base.join("large.bin")
        driver.upload_file(source, url)
        assert driver.stat(url).size == len(data)
        local = tmp_path / "large-out.bin"
        driver.download_file(url, local)
        assert hashlib.sha256(local.read_bytes()).digest() == hashlib.sha256(data).digest()

    def test_upload_stream_of_unknown_size(self, driver: StorageDriver, storage_base: StorageURL) -> None:
        data = _payload(300_000, seed=3)
        url = storage_base.join("streamed.bin")
        driver.upload_stream(io.BufferedReader(_Trickle(data)), url)
        assert self._get(driver, url) == data

    def test_keys_with_spaces_and_unicode(self, driver: StorageDriver, storage_base: StorageURL) -> None:
        fixed = ["with space.txt", "ünïcödé ✓ name.bin", "日本語のファイル", "a+b=c (1) [x] {y} ~z!.dat"]
        for index, name in enumerate(fixed):
            self._check_key(driver, storage_base.join(f"fixed-{index}/"), name)

        @settings(
            max_examples=self.hypothesis_examples,
            deadline=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
            database=None,
        )
        @given(name=object_names())
        def generated(name: str) -> None:
            self._check_key(driver, storage_base.join(f"gen-{uuid.uuid4().hex[:8]}/"), name)

        generated()

    def _check_key(self, driver: StorageDriver, folder: StorageURL, name: str) -> None:
        url = folder.join(name)
        assert url.name == name
        data = name.encode("utf-8") * 3
        self._put(driver, url, data)
        assert driver.exists(url), f"uploaded {url} but exists() says no"
        assert driver.stat(url).size == len(data)
        assert self._get(driver, url) == data
        if driver.capabilities.listing:
            listed = self._eventually_listed(driver, folder, {name}, recursive=False)
            assert set(listed) == {name}
            assert listed[name].url == url
        driver.delete(url)
        assert not driver.exists(url)

    def test_keys_with_empty_segments(self, driver: StorageDriver, storage_base: StorageURL) -> None:
        """On object stores ``p//a.txt`` is a key of its own, apart from ``p/a.txt`` (ClearML's
        ``upload_folder`` to a URL ending in ``/`` writes such keys): stored, read, listed and
        deleted as it is. File systems fold ``//`` as the system does; they skip this test."""
        if not storage_base.is_bucket:
            pytest.skip("only object-store keys keep empty segments; paths are normalised")
        doubled = storage_base.join("p//a.txt")
        single = storage_base.join("p/a.txt")
        assert doubled.key.endswith("p//a.txt") and doubled != single
        self._put(driver, doubled, b"doubled")
        self._put(driver, single, b"single")
        assert self._get(driver, doubled) == b"doubled"
        assert self._get(driver, single) == b"single"
        assert driver.stat(doubled).size == len(b"doubled")
        if driver.capabilities.listing:
            listed = self._eventually_listed(driver, storage_base, {"p//a.txt", "p/a.txt"}, recursive=True)
            assert set(listed) == {"p//a.txt", "p/a.txt"}
            assert listed["p//a.txt"].url == doubled and listed["p//a.txt"].size == len(b"doubled")
        driver.delete(doubled)
        assert not driver.exists(doubled)
        assert self._get(driver, single) == b"single"

    # -- listing ------------------------------------------------------------------------------
    def _tree(self, driver: StorageDriver, base: StorageURL) -> dict[str, bytes]:
        files = {
            "one.txt": b"1",
            "two.bin": b"22",
            "sub/three.txt": b"333",
            "sub/deeper/four.txt": b"4444",
        }
        for name, data in files.items():
            self._put(driver, base.join(name), data)
        # a sibling whose name extends the folder's must not show up in its listing
        self._put(driver, base.parent.join(base.name + "-sibling/x.txt"), b"x")
        return files

    def test_list_not_recursive(self, driver: StorageDriver, storage_base: StorageURL) -> None:
        self._needs(driver, "listing")
        base = storage_base.join("tree/")
        self._tree(driver, base)
        listed = self._eventually_listed(driver, base, {"one.txt", "two.bin", "sub/"}, recursive=False)
        assert set(listed) == {"one.txt", "two.bin", "sub/"}
        assert listed["sub/"].is_dir
        assert not listed["one.txt"].is_dir
        assert listed["one.txt"].size == 1
        assert listed["two.bin"].size == 2
        # the folder URL without its trailing slash lists the same
        without_slash = base.with_path(base.path.rstrip("/"))
        assert {info.url for info in driver.list(without_slash)} == {info.url for info in listed.values()}

    def test_list_recursive(self, driver: StorageDriver, storage_base: StorageURL) -> None:
        self._needs(driver, "listing")
        base = storage_base.join("tree/")
        files = self._tree(driver, base)
        listed = self._eventually_listed(driver, base, set(files), recursive=True)
        assert set(listed) == set(files)
        for name, data in files.items():
            assert listed[name].size == len(data)
            assert not listed[name].is_dir

    def test_list_missing_folder_is_empty(self, driver: StorageDriver, storage_base: StorageURL) -> None:
        self._needs(driver, "listing")
        missing = storage_base.join("no-such-folder/")
        assert list(driver.list(missing)) == []
        assert list(driver.list(missing, recursive=True)) == []

    # -- stat and metadata ----------------------------------------------------------------------
    def test_stat_and_metadata(self, driver: StorageDriver, storage_base: StorageURL) -> None:
        url = storage_base.join("meta/data.json")
        before = time.time()
        self._put(driver, url, b'{"a": 1}', content_type="application/json", extra={"purpose": "kit"})
        info = driver.stat(url)
        assert info.url == url
        assert info.size == 8
        assert not info.is_dir
        if driver.capabilities.mtime:
            assert info.mtime is not None
            assert before - 300 <= info.mtime <= time.time() + 300, "mtime is not close to now"
        if driver.capabilities.content_type:
            assert info.content_type == "application/json"
        if driver.capabilities.metadata:
            assert dict(info.metadata).get("purpose") == "kit"
        if driver.capabilities.etag:
            assert info.etag
            self._put(driver, url, b'{"a": 22}', content_type="application/json")
            assert driver.stat(url).etag != info.etag, "the etag did not change with the content"

    def test_stat_folder(self, driver: StorageDriver, storage_base: StorageURL) -> None:
        self._needs(driver, "directories")
        self._put(driver, storage_base.join("folder/file"), b"x")
        info = driver.stat(storage_base.join("folder/"))
        assert info.is_dir
        assert driver.exists(storage_base.join("folder/"))

    # -- missing objects --------------------------------------------------------------------
    def test_exists_on_missing(self, driver: StorageDriver, storage_base: StorageURL) -> None:
        missing = storage_base.join("missing/object.bin")
        assert driver.exists(missing) is False
        with pytest.raises(ObjectNotFoundError) as raised:
            driver.stat(missing)
        self._no_secret(raised.value, missing)

    def test_download_missing_raises_not_found(
        self, driver: StorageDriver, storage_base: StorageURL, tmp_path: Path
    ) -> None:
        missing = storage_base.join("missing.bin")
        with pytest.raises(ObjectNotFoundError) as raised:
            driver.open_read(missing)
        self._no_secret(raised.value, missing)
        out = tmp_path / "download-missing"
        with pytest.raises(ObjectNotFoundError):
            driver.download_file(missing, out / "missing.bin")
        assert not any(p.is_file() for p in out.rglob("*")), "a failed download left a file behind"

    # -- delete, overwrite, copy ------------------------------------------------------------------
    def test_delete(self, driver: StorageDriver, storage_base: StorageURL) -> None:
        url = storage_base.join("to-delete.txt")
        keep = storage_base.join("to-keep.txt")
        self._put(driver, url, b"bye")
        self._put(driver, keep, b"stay")
        driver.delete(url)
        assert not driver.exists(url)
        assert driver.exists(keep)
        with pytest.raises(ObjectNotFoundError):
            driver.delete(url)

    def test_overwrite(self, driver: StorageDriver, storage_base: StorageURL) -> None:
        url = storage_base.join("overwrite.bin")
        self._put(driver, url, _payload(5000, seed=4))
        self._put(driver, url, b"shorter")
        assert self._get(driver, url) == b"shorter"
        assert driver.stat(url).size == 7

    def test_copy(self, driver: StorageDriver, storage_base: StorageURL) -> None:
        src = storage_base.join("copy/src.bin")
        dst = storage_base.join("copy/nested/dst.bin")
        data = _payload(70_000, seed=5)
        self._put(driver, src, data)
        driver.copy(src, dst)
        assert self._get(driver, dst) == data
        assert self._get(driver, src) == data
        with pytest.raises(ObjectNotFoundError):
            driver.copy(storage_base.join("copy/missing"), storage_base.join("copy/never"))

    # -- reads ------------------------------------------------------------------------------
    def test_streaming_read(self, driver: StorageDriver, storage_base: StorageURL) -> None:
        data = _payload(1_000_000, seed=6)
        url = storage_base.join("stream.bin")
        self._put(driver, url, data)
        chunks = []
        stream: BinaryIO
        with driver.open_read(url) as stream:
            while chunk := stream.read(65_537):
                chunks.append(chunk)
        assert b"".join(chunks) == data
        # a stream closed half-way leaves the driver usable
        stream = driver.open_read(url)
        assert stream.read(10) == data[:10]
        stream.close()
        assert self._get(driver, url) == data

    def test_ranged_read(self, driver: StorageDriver, storage_base: StorageURL, tmp_path: Path) -> None:
        self._needs(driver, "ranges")
        data = _payload(200_000, seed=7)
        url = storage_base.join("ranges.bin")
        self._put(driver, url, data)
        for start, stop in [(0, 10), (1, 2), (100_000, 150_000), (199_990, None), (5, 5), (0, None)]:
            with driver.open_read(url, (start, stop)) as stream:
                assert stream.read() == data[start:stop], f"range {(start, stop)}"
        with driver.open_read(url, (len(data) + 10, None)) as stream:
            assert stream.read() == b""
        with driver.open_read(url, (len(data) - 5, len(data) + 100)) as stream:
            assert stream.read() == data[-5:]
        local = tmp_path / "part.bin"
        assert driver.download_file(url, local, byte_range=(1000, 3000)) == 2000
        assert local.read_bytes() == data[1000:3000]
        with pytest.raises(ObjectNotFoundError):
            driver.open_read(storage_base.join("missing-range.bin"), (0, 10))

    # -- many objects ---------------------------------------------------------------------------
    def test_folder_transfer(self, driver: StorageDriver, storage_base: StorageURL, tmp_path: Path) -> None:
        source = tmp_path / "source"
        names = [f"{f'sub{i % 3}/' if i % 2 else ''}file {i:02d}.bin" for i in range(self.folder_files)]
        for index, name in enumerate(names):
            path = source / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(_payload(100 + 997 * index, seed=index))
        base = storage_base.join("folder/")
        for name in names:
            driver.upload_file(source / name, base.join(name))
        target = tmp_path / "target"
        for name in names:
            driver.download_file(base.join(name), target / name)
            assert (target / name).read_bytes() == (source / name).read_bytes(), name
        if not driver.capabilities.listing:
            return
        listed = self._eventually_listed(driver, base, set(names), recursive=True)
        assert set(listed) == set(names)
        assert all(listed[name].size == (source / name).stat().st_size for name in names)
        assert driver.delete_folder(base) == len(names)
        assert self._eventually_listed(driver, base, set(), recursive=True) == {}

    def test_concurrent_uploads(self, driver: StorageDriver, storage_base: StorageURL) -> None:
        base = storage_base.join("concurrent/")
        payloads = {
            f"object-{i:02d}.bin": _payload(20_000 + i, seed=100 + i) for i in range(2 * self.concurrency)
        }
        with ThreadPoolExecutor(self.concurrency) as pool:
            list(pool.map(lambda item: self._put(driver, base.join(item[0]), item[1]), payloads.items()))
        for name, data in payloads.items():
            assert self._get(driver, base.join(name)) == data, name
        # many writers of one key: the survivor is one whole upload, not a mix
        same = base.join("same-key.bin")
        versions = [_payload(50_000, seed=200 + i) for i in range(self.concurrency)]
        with ThreadPoolExecutor(self.concurrency) as pool:
            list(pool.map(lambda data: self._put(driver, same, data), versions))
        assert self._get(driver, same) in versions

    def test_atomic_write(self, driver: StorageDriver, storage_base: StorageURL) -> None:
        self._needs(driver, "atomic_write")
        url = storage_base.join("atomic.bin")
        old, new = _payload(2_000_000, seed=8), _payload(2_000_000, seed=9)
        self._put(driver, url, old)
        seen: list[bytes] = []
        errors: list[BaseException] = []
        stop = threading.Event()

        def read_while_writing() -> None:
            while not stop.is_set():
                try:
                    seen.append(self._get(driver, url))
                except BaseException as error:  # reported below, in the test's thread
                    errors.append(error)
                    return

        reader = threading.Thread(target=read_while_writing)
        reader.start()
        try:
            for data in (new, old, new):
                self._put(driver, url, data)
        finally:
            stop.set()
            reader.join(timeout=60)
        assert not errors, errors
        assert seen and all(data in (old, new) for data in seen), "a reader saw a half-written object"

    def test_errors_name_the_url_without_its_password(
        self, driver: StorageDriver, storage_base: StorageURL
    ) -> None:
        missing = storage_base.join("nothing-here.txt")
        with pytest.raises(StorageError) as raised:
            driver.open_read(missing)
        self._no_secret(raised.value, missing)
        assert missing.name in str(raised.value)

    # -- error classification, through a fault-injecting proxy --------------------------------
    @pytest.fixture
    def fault_proxy(self) -> CountingProxy | None:
        """The proxy that ``fault_base_url``'s requests go through; None skips the error tests."""
        return None

    @pytest.fixture
    def fault_base_url(self, storage_base_url: str | StorageURL) -> str | StorageURL:
        """A writable base URL whose requests go through ``fault_proxy``."""
        return storage_base_url

    @pytest.fixture
    def fault_config(self, storage_config: Any) -> Any:
        """The configuration for ``fault_base_url`` (best with the SDK's own retries off)."""
        return storage_config

    @pytest.fixture
    def fault_target(
        self, fault_proxy: CountingProxy | None, fault_base_url: str | StorageURL, fault_config: Any
    ) -> Iterator[FaultTarget]:
        if fault_proxy is None:
            pytest.skip(
                f"{type(self).__name__} provides no fault_proxy fixture: error classification is checked "
                "for backends that speak HTTP, through a CountingProxy in front of their test server"
            )
        base = parse_url(fault_base_url).as_folder()
        driver = driver_for(base, fault_config)
        url = base.join("faults/object.bin")
        fault_proxy.reset()
        self._put(driver, url, b"payload")
        assert fault_proxy.requests, (
            "no request of the driver reached fault_proxy: fault_base_url and fault_config must "
            "send them through it"
        )
        fault_proxy.reset()
        try:
            yield FaultTarget(driver, url, fault_proxy)
        finally:
            fault_proxy.reset()

    def _classified(
        self, target: FaultTarget, status: int, operation: str, expected: type[StorageError]
    ) -> None:
        """``operation`` raises ``expected`` while the backend answers ``status``; retried only if transient."""
        action = _OPERATIONS[operation]
        target.proxy.fail_next(status, count=10_000)
        with pytest.raises(StorageError) as raised:
            action(target.driver, target.url)
        error = raised.value
        assert isinstance(error, expected), (
            f"{operation} answered {status} raised {type(error).__name__}: {error}; expected {expected.__name__}"
        )
        transient = expected is TransientStorageError
        if not transient:
            assert not isinstance(error, TransientStorageError), f"{status} must not be retried: {error!r}"
        self._no_secret(error, target.url)
        once = len(target.proxy.requests)
        assert once >= 1 and len(target.proxy.injected) == once, "every request should have met the fault"

        retries = 2
        with pytest.raises(expected):
            retrying(
                lambda: action(target.driver, target.url),
                what=f"{operation} {target.url}",
                retries=retries,
                backoff_sec=0,
            )
        again = len(target.proxy.requests) - once
        if transient:
            assert again == (retries + 1) * once, (
                f"{again} requests: a {status} was not retried {retries} times"
            )
        else:
            assert again == once, f"{again} requests where {once} were expected: a {status} was retried"

    @pytest.mark.parametrize("operation", list(_OPERATIONS))
    @pytest.mark.parametrize("status", [401, 403])
    def test_refused_credentials_are_permission_denied(
        self, fault_target: FaultTarget, status: int, operation: str
    ) -> None:
        self._classified(fault_target, status, operation, PermissionDeniedError)

    @pytest.mark.parametrize("operation", ["read", "stat", "delete"])
    def test_a_404_is_not_found_and_never_retried(self, fault_target: FaultTarget, operation: str) -> None:
        self._classified(fault_target, 404, operation, ObjectNotFoundError)

    @pytest.mark.parametrize("operation", list(_OPERATIONS))
    @pytest.mark.parametrize("status", [500, 503])
    def test_server_errors_are_transient(
        self, fault_target: FaultTarget, status: int, operation: str
    ) -> None:
        self._classified(fault_target, status, operation, TransientStorageError)

    def test_a_transient_failure_is_retried_until_the_backend_answers(
        self, fault_target: FaultTarget
    ) -> None:
        target = fault_target
        target.proxy.fail_next(503, count=2)
        data = retrying(
            lambda: self._get(target.driver, target.url),
            what=f"read {target.url}",
            retries=3,
            backoff_sec=0,
        )
        assert data == b"payload"
        assert target.proxy.injected == [503, 503]
        assert target.proxy.faults_left == 0
