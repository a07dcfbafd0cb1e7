"""The whole clearml-core storage conformance kit, run against this backend."""

import pytest

from clearml_core.config import Config
from clearml_core.testing.storage import StorageContract


class TestDirStore(StorageContract):
    @pytest.fixture
    def storage_config(self, tmp_path):
        return Config({"sdk": {"storage": {"dirstore": {"root": str(tmp_path / "store")}}}}, {}, [])

    @pytest.fixture
    def storage_base_url(self):
        return "dirstore://kit/base/"
