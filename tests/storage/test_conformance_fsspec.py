"""Schemes no plugin claims go through fsspec: memory:// and FTP (a pyftpdlib server on 127.0.0.1)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from clearml_core.config import Config
from clearml_core.storage.drivers.fsspec import FsspecDriver
from clearml_core.testing.storage import StorageContract
from tests.storage.kit_support import defaults_only_config

FTP_USER, FTP_PASSWORD = "kit-user", "s3cr3t-ftp-pass"


@pytest.fixture(scope="module")
def module_config(tmp_path_factory: pytest.TempPathFactory) -> Config:
    return defaults_only_config(tmp_path_factory)


@pytest.fixture(scope="module")
def ftp_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int, Path]]:
    from pyftpdlib.authorizers import DummyAuthorizer
    from pyftpdlib.handlers import FTPHandler
    from pyftpdlib.servers import ThreadedFTPServer

    root = tmp_path_factory.mktemp("ftp-root")
    authorizer = DummyAuthorizer()
    authorizer.add_user(FTP_USER, FTP_PASSWORD, str(root), perm="elradfmwMT")

    class Handler(FTPHandler):
        pass

    Handler.authorizer = authorizer
    Handler.encoding = "utf-8"
    server = ThreadedFTPServer(("127.0.0.1", 0), Handler)
    server.max_cons = 256
    thread = threading.Thread(target=server.serve_forever, kwargs={"timeout": 0.2}, daemon=True)
    thread.start()
    host, port = server.address[:2]
    try:
        yield host, port, root
    finally:
        server.close_all()
        thread.join(timeout=10)


class TestMemoryContract(StorageContract):
    multipart_size = 1024 * 1024

    @pytest.fixture
    def storage_config(self, module_config: Config) -> Config:
        return module_config

    @pytest.fixture
    def storage_base_url(self) -> str:
        return f"memory://kit/{uuid.uuid4().hex}/"

    def test_driver_is_the_fsspec_driver(self, driver) -> None:
        assert isinstance(driver, FsspecDriver)


class TestFtpContract(StorageContract):
    multipart_size = 2 * 1024 * 1024

    @pytest.fixture
    def storage_config(self, module_config: Config) -> Config:
        return module_config

    @pytest.fixture
    def storage_base_url(self, ftp_server: tuple[str, int, Path]) -> str:
        host, port, _root = ftp_server
        return f"ftp://{FTP_USER}:{FTP_PASSWORD}@{host}:{port}/kit/{uuid.uuid4().hex}/"

    def test_files_land_in_the_server_folder(self, driver, storage_base, ftp_server) -> None:
        import io

        url = storage_base.join("a b/ünï.txt")
        driver.upload_stream(io.BytesIO(b"ftp data"), url)
        assert (ftp_server[2] / url.path.lstrip("/")).read_bytes() == b"ftp data"

    def test_the_password_never_shows(self, driver, storage_base) -> None:
        import io

        url = storage_base.join("x.txt")
        driver.upload_stream(io.BytesIO(b"x"), url)
        assert storage_base.password == FTP_PASSWORD
        shown = [
            str(storage_base),
            repr(storage_base),
            repr(driver.stat(url)),
            repr(list(driver.list(storage_base))),
        ]
        assert not [text for text in shown if FTP_PASSWORD in text]
        with pytest.raises(Exception) as raised:
            driver.delete(storage_base.join("missing"))
        assert FTP_PASSWORD not in str(raised.value)
