"""The built-in local-file driver passes the storage conformance kit, for plain paths and file:// URLs."""

from __future__ import annotations

from pathlib import Path

import pytest

from clearml_core.config import Config
from clearml_core.storage.drivers.local import LocalDriver
from clearml_core.testing.storage import StorageContract
from tests.storage.kit_support import defaults_only_config


@pytest.fixture(scope="module")
def module_config(tmp_path_factory: pytest.TempPathFactory) -> Config:
    return defaults_only_config(tmp_path_factory)


class TestLocalDriverContract(StorageContract):
    @pytest.fixture
    def storage_config(self, module_config: Config) -> Config:
        return module_config

    @pytest.fixture(params=["plain path", "file URL"])
    def storage_base_url(self, request: pytest.FixtureRequest, tmp_path: Path) -> str:
        root = tmp_path / "store root"
        return str(root) if request.param == "plain path" else f"file://{root}/"

    def test_driver_is_the_local_driver(self, driver) -> None:
        assert isinstance(driver, LocalDriver)
