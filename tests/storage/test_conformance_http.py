"""The built-in HTTP driver passes the storage conformance kit against a ClearML-compatible file server."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from clearml_core.config import Config
from clearml_core.storage.drivers.http import HttpDriver
from clearml_core.testing.proxy import CountingProxy, counting_proxy
from clearml_core.testing.storage import StorageContract
from tests.storage.fileserver import FileServer, serve
from tests.storage.kit_support import defaults_only_config


@pytest.fixture(scope="module")
def module_config(tmp_path_factory: pytest.TempPathFactory) -> Config:
    return defaults_only_config(tmp_path_factory)


@pytest.fixture(scope="module")
def fileserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FileServer]:
    with serve(tmp_path_factory.mktemp("fileserver") / "root") as server:
        yield server


@pytest.fixture(scope="module")
def fileserver_proxy(fileserver: FileServer) -> Iterator[CountingProxy]:
    with counting_proxy(fileserver.server_address[1]) as proxy:
        yield proxy


class TestHttpDriverContract(StorageContract):
    multipart_size = 3 * 1024 * 1024

    @pytest.fixture
    def fault_proxy(self, fileserver_proxy: CountingProxy) -> CountingProxy:
        return fileserver_proxy

    @pytest.fixture
    def fault_base_url(self, fileserver_proxy: CountingProxy) -> str:
        return f"http://{fileserver_proxy.netloc}/kit/{uuid.uuid4().hex}/"

    @pytest.fixture
    def storage_config(self, module_config: Config) -> Config:
        return module_config

    @pytest.fixture
    def storage_base_url(self, fileserver: FileServer) -> str:
        return f"{fileserver.url}kit/{uuid.uuid4().hex}/"

    def test_driver_is_the_http_driver(self, driver) -> None:
        assert isinstance(driver, HttpDriver)

    def test_uploads_land_where_the_file_server_keeps_them(
        self, driver, storage_base, fileserver: FileServer
    ) -> None:
        url = storage_base.join("sub dir/ünï.txt")
        driver.upload_stream(__import__("io").BytesIO(b"data"), url, size=4)
        stored = fileserver.root / url.path.lstrip("/")
        assert stored.read_bytes() == b"data"
        assert isinstance(stored, Path)
