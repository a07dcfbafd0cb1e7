"""The Azure driver passes the storage conformance kit against Azurite on loopback."""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator

import pytest
from clearml_core_storage_azure.driver import AzureBlobDriver

from clearml_core.config import Config
from clearml_core.testing.proxy import CountingProxy, counting_proxy
from clearml_core.testing.storage import StorageContract
from plugins.storage_azure.tests.support import (
    ACCOUNT,
    KEY,
    Azurite,
    azurite_conf,
    containers_conf,
    entry,
    load,
)

SINGLE_PUT = 1024 * 1024
BLOCK = 256 * 1024


@pytest.fixture(scope="module")
def kit_container(azurite: Azurite) -> str:
    return azurite.new_container("kit")


@pytest.fixture(scope="module")
def kit_config(azurite: Azurite, tmp_path_factory: pytest.TempPathFactory) -> Config:
    text = azurite_conf(
        azurite,
        max_single_put_size=SINGLE_PUT,
        block_size=BLOCK,
        max_single_get_size=BLOCK,
        max_connections=4,
    )
    return load(text, tmp_path_factory.mktemp("kit-conf"))


@pytest.fixture(scope="module")
def azurite_proxy(azurite: Azurite) -> Iterator[CountingProxy]:
    with counting_proxy(azurite.port) as proxy:
        yield proxy


@pytest.fixture(scope="module")
def proxied_config(azurite_proxy: CountingProxy, tmp_path_factory: pytest.TempPathFactory) -> Config:
    """The account reached through the proxy; no SDK retries, so each failure reaches the kit."""
    account = entry(
        account_name=ACCOUNT, account_key=KEY, account_url=f"http://{azurite_proxy.netloc}/{ACCOUNT}"
    )
    return load(containers_conf(account, max_retries=0), tmp_path_factory.mktemp("proxied-conf"))


class TestAzureConformance(StorageContract):
    """``azure://<account>.blob.core.windows.net/…`` sent to Azurite by the entry's account_url."""

    multipart_size = SINGLE_PUT + 1  # staged in blocks up, fetched in ranges down
    folder_files = 12

    @pytest.fixture
    def storage_config(self, kit_config: Config) -> Config:
        return kit_config

    @pytest.fixture
    def storage_base_url(self, kit_container: str) -> str:
        return f"azure://{ACCOUNT}.blob.core.windows.net/{kit_container}/{uuid.uuid4().hex}/"

    @pytest.fixture
    def fault_proxy(self, azurite_proxy: CountingProxy) -> CountingProxy:
        return azurite_proxy

    @pytest.fixture
    def fault_config(self, proxied_config: Config) -> Config:
        return proxied_config

    def test_driver_is_the_azure_driver(self, driver) -> None:
        assert isinstance(driver, AzureBlobDriver)

    def test_large_upload_is_staged_in_blocks(self, driver, storage_base, azurite: Azurite, tmp_path) -> None:
        source = tmp_path / "big.bin"
        source.write_bytes(b"b" * (SINGLE_PUT + 1))
        url = storage_base.join("big.bin")
        driver.upload_file(source, url)
        blob = azurite.service().get_blob_client(url.bucket, url.key)
        committed, _uncommitted = blob.get_block_list("committed")
        assert len(committed) == -(-(SINGLE_PUT + 1) // BLOCK)
        small = storage_base.join("small.bin")
        driver.upload_stream(io.BytesIO(b"s" * 10), small)  # unknown size, but small: one Put Blob
        assert azurite.service().get_blob_client(small.bucket, small.key).get_block_list("committed")[0] == []


class TestAzureConformanceWasbs(StorageContract):
    """MLflow's ``wasbs://<container>@<account>.blob.core.windows.net/…`` with a connection string."""

    folder_files = 4
    hypothesis_examples = 3

    @pytest.fixture
    def storage_config(self, tmp_path_factory: pytest.TempPathFactory) -> Config:
        return load("", tmp_path_factory.mktemp("wasbs-conf"))

    @pytest.fixture
    def storage_base_url(self, azurite: Azurite, kit_container: str, monkeypatch) -> str:
        monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", azurite.connection_string)
        return f"wasbs://{kit_container}@{ACCOUNT}.blob.core.windows.net/{uuid.uuid4().hex}/"
