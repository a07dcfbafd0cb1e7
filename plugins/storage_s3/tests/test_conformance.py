"""The S3 driver passes the storage conformance kit against a moto server on loopback."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from clearml_core_storage_s3.driver import S3Driver

from clearml_core.config import Config
from clearml_core.testing.proxy import CountingProxy, counting_proxy
from clearml_core.testing.storage import StorageContract
from plugins.storage_s3.tests.support import KEY, SECRET, MotoServer, endpoint_conf, load

PART = 5 * 1024 * 1024


@pytest.fixture(scope="module")
def kit_bucket(moto: MotoServer) -> str:
    return moto.new_bucket("kit")


@pytest.fixture(scope="module")
def kit_config(moto: MotoServer, tmp_path_factory: pytest.TempPathFactory) -> Config:
    text = endpoint_conf(moto) + (
        f"sdk.aws.boto3 {{ multipart_threshold: {PART}, multipart_chunksize: {PART}, "
        "max_multipart_concurrency: 4 }\n"
    )
    return load(text, tmp_path_factory.mktemp("kit-conf"))


@pytest.fixture(scope="module")
def moto_proxy(moto: MotoServer) -> Iterator[CountingProxy]:
    with counting_proxy(moto.port) as proxy:
        yield proxy


@pytest.fixture(scope="module")
def proxied_config(moto_proxy: CountingProxy, tmp_path_factory: pytest.TempPathFactory) -> Config:
    """The proxy as the S3 endpoint; one attempt per request, so each failure reaches the kit."""
    text = (
        f'sdk.aws.s3.credentials: [ {{ host: "{moto_proxy.netloc}", key: "{KEY}", secret: "{SECRET}", '
        "secure: false } ]\nsdk.aws.boto3.max_attempts: 1\n"
    )
    return load(text, tmp_path_factory.mktemp("proxied-conf"))


class TestS3Conformance(StorageContract):
    multipart_size = PART + 1  # two parts up, two ranged GETs down
    folder_files = 12

    @pytest.fixture
    def storage_config(self, kit_config: Config) -> Config:
        return kit_config

    @pytest.fixture
    def storage_base_url(self, moto: MotoServer, kit_bucket: str) -> str:
        return f"s3://{moto.netloc}/{kit_bucket}/{uuid.uuid4().hex}/"

    @pytest.fixture
    def fault_proxy(self, moto_proxy: CountingProxy) -> CountingProxy:
        return moto_proxy

    @pytest.fixture
    def fault_base_url(self, moto_proxy: CountingProxy, kit_bucket: str) -> str:
        return f"s3://{moto_proxy.netloc}/{kit_bucket}/{uuid.uuid4().hex}/"

    @pytest.fixture
    def fault_config(self, proxied_config: Config) -> Config:
        return proxied_config

    def test_driver_is_the_s3_driver(self, driver) -> None:
        assert isinstance(driver, S3Driver)

    def test_large_upload_is_multipart(
        self, driver, storage_base, moto: MotoServer, kit_bucket, tmp_path
    ) -> None:
        source = tmp_path / "big.bin"
        source.write_bytes(b"m" * (PART + 1))
        url = storage_base.join("big.bin")
        driver.upload_file(source, url)
        head = moto.client().head_object(Bucket=kit_bucket, Key=url.key)
        assert head["ETag"].strip('"').endswith("-2"), head["ETag"]
