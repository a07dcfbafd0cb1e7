"""What the conformance kit does not cover: atomicity under failure, folders, error mapping."""

from __future__ import annotations

import io
import os
import threading
from pathlib import Path

import pytest

from clearml_core.config import Config
from clearml_core.storage.driver import TEMP_SUFFIX
from clearml_core.storage.drivers.fsspec import FsspecDriver
from clearml_core.storage.drivers.local import LocalDriver
from clearml_core.storage.errors import (
    ObjectNotFoundError,
    PermissionDeniedError,
    StorageError,
    TransientStorageError,
)
from clearml_core.storage.url import parse_url
from tests.storage.kit_support import defaults_only_config


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """A folder of the test's own (tmp_path also holds the private HOME)."""
    folder = tmp_path / "store"
    folder.mkdir()
    return folder


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Config:
    return defaults_only_config(tmp_path_factory)


class _Breaks(io.RawIOBase):
    """Gives ``good`` bytes, then fails like a dropped network stream."""

    def __init__(self, good: int) -> None:
        self._left = good

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self._left <= 0:
            raise ConnectionResetError("peer went away")
        count = min(len(buffer), self._left)
        buffer[:count] = b"n" * count
        self._left -= count
        return count


def test_local_write_that_fails_keeps_the_old_file(config: Config, store: Path) -> None:
    driver = LocalDriver(config, parse_url(store))
    url = parse_url(store / "model.bin")
    driver.upload_stream(io.BytesIO(b"old contents"), url)
    with pytest.raises((StorageError, ConnectionResetError)):
        driver.upload_stream(io.BufferedReader(_Breaks(3 * 1024 * 1024)), url)
    assert (store / "model.bin").read_bytes() == b"old contents"
    assert sorted(p.name for p in store.iterdir()) == ["model.bin"], "a temporary file was left behind"


def test_local_download_that_fails_leaves_nothing(config: Config, tmp_path: Path) -> None:
    driver = LocalDriver(config, parse_url(tmp_path))
    (tmp_path / "src").mkdir()
    with pytest.raises(StorageError, match="it is a folder"):
        driver.download_file(parse_url(tmp_path / "src"), tmp_path / "out" / "x")
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


def test_local_listing_skips_writes_in_progress(config: Config, store: Path) -> None:
    driver = LocalDriver(config, parse_url(store))
    (store / "done.txt").write_text("x")
    (store / f".done.txt.abc{TEMP_SUFFIX}").write_text("partial")
    assert [i.name for i in driver.list(parse_url(store))] == ["done.txt"]
    assert [i.name for i in driver.list(parse_url(store), recursive=True)] == ["done.txt"]


def test_local_folders(config: Config, tmp_path: Path) -> None:
    driver = LocalDriver(config, parse_url(tmp_path))
    base = parse_url(tmp_path).as_folder()
    for name in ("a/1", "a/b/2", "a/b/c/3"):
        driver.upload_stream(io.BytesIO(b"x"), base.join(name))
    with pytest.raises(StorageError, match="it is a folder"):
        driver.delete(base.join("a"))
    with pytest.raises(StorageError, match="names a folder"):
        driver.upload_stream(io.BytesIO(b"x"), base.join("a/"))
    with pytest.raises(ObjectNotFoundError):
        driver.stat(base.join("a/1/"))
    assert driver.stat(base.join("a")).is_dir
    assert driver.delete_folder(base.join("a")) == 3
    assert not (tmp_path / "a").exists()
    assert driver.delete_folder(base.join("a")) == 0


def test_local_upload_of_a_missing_file(config: Config, tmp_path: Path) -> None:
    driver = LocalDriver(config, parse_url(tmp_path))
    with pytest.raises(ObjectNotFoundError, match="no such file"):
        driver.upload_file(tmp_path / "nope", parse_url(tmp_path / "dst"))


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file permissions")
def test_local_permission_denied(config: Config, tmp_path: Path) -> None:  # pragma: no cover - non-root
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    driver = LocalDriver(config, parse_url(tmp_path))
    with pytest.raises(PermissionDeniedError):
        driver.upload_stream(io.BytesIO(b"x"), parse_url(locked / "f"))


def test_local_readers_never_see_partial_files_across_threads(config: Config, tmp_path: Path) -> None:
    """The atomic-write promise, with many writers and readers on one key."""
    driver = LocalDriver(config, parse_url(tmp_path))
    url = parse_url(tmp_path / "hot.bin")
    versions = [bytes([i]) * 500_000 for i in range(6)]
    driver.upload_stream(io.BytesIO(versions[0]), url)
    bad: list[int] = []

    def writer(data: bytes) -> None:
        for _ in range(5):
            driver.upload_stream(io.BytesIO(data), url)

    def reader() -> None:
        for _ in range(30):
            with driver.open_read(url) as stream:
                data = stream.read()
            if data not in versions:
                bad.append(len(data))

    threads = [threading.Thread(target=writer, args=(v,)) for v in versions] + [
        threading.Thread(target=reader) for _ in range(3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert bad == []


# -- fsspec ------------------------------------------------------------------------------------


def test_fsspec_ftp_wrong_password_is_permission_denied(config: Config, tmp_path: Path) -> None:
    from pyftpdlib.authorizers import DummyAuthorizer
    from pyftpdlib.handlers import FTPHandler
    from pyftpdlib.servers import ThreadedFTPServer

    authorizer = DummyAuthorizer()
    authorizer.add_user("bob", "right-password", str(tmp_path), perm="elradfmw")

    class Handler(FTPHandler):
        pass

    Handler.authorizer = authorizer
    Handler.auth_failed_timeout = 0
    server = ThreadedFTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"timeout": 0.2}, daemon=True)
    thread.start()
    try:
        host, port = server.address[:2]
        url = parse_url(f"ftp://bob:wrong-password@{host}:{port}/x.txt")
        driver = FsspecDriver(config, url)
        with pytest.raises(PermissionDeniedError) as raised:
            driver.stat(url)
        assert "wrong-password" not in str(raised.value)
        good = parse_url(f"ftp://bob:right-password@{host}:{port}/x.txt")
        FsspecDriver(config, good).upload_stream(io.BytesIO(b"ok"), good)
        assert (tmp_path / "x.txt").read_bytes() == b"ok"
    finally:
        server.close_all()
        thread.join(timeout=10)


def test_fsspec_ftp_unreachable_is_transient(config: Config) -> None:
    from clearml_core.testing.servers import free_port

    url = parse_url(f"ftp://u:p@127.0.0.1:{free_port()}/x")
    with pytest.raises(TransientStorageError):
        FsspecDriver(config, url).stat(url)


def test_fsspec_options_from_config(config: Config) -> None:
    values = config.as_dict()
    values["sdk"]["storage"]["fsspec"] = {"memory": {"skip_instance_cache": True}}
    driver = FsspecDriver(Config(values, {}, []), parse_url("memory://x/y"))
    assert driver._options == {"skip_instance_cache": True}


def test_fsspec_each_thread_has_its_own_filesystem(config: Config) -> None:
    driver = FsspecDriver(config, parse_url("memory://threads/x"))
    seen = []
    thread = threading.Thread(target=lambda: seen.append(driver.fs))
    thread.start()
    thread.join()
    assert driver.fs is driver.fs
    assert seen[0] is not driver.fs
