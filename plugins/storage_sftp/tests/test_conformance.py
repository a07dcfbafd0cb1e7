"""The SFTP driver passes the storage conformance kit against a real sshd on loopback (key login)."""

from __future__ import annotations

from pathlib import Path

import pytest
from clearml_core_storage_sftp.driver import SFTPDriver

from clearml_core.config import Config
from clearml_core.testing.storage import StorageContract
from plugins.storage_sftp.tests.support import SSHServer, conf_entry, load


@pytest.fixture(scope="module")
def kit_config(
    sshd: SSHServer, session_known_hosts: Path, tmp_path_factory: pytest.TempPathFactory
) -> Config:
    text = conf_entry(sshd) + f'sdk.sftp.known_hosts: "{session_known_hosts}"\n'
    return load(text, tmp_path_factory.mktemp("kit-conf"))


class TestSFTPConformance(StorageContract):
    multipart_size = 5 * 1024 * 1024  # more than one read window of the driver

    @pytest.fixture
    def storage_config(self, kit_config: Config) -> Config:
        return kit_config

    @pytest.fixture
    def storage_base_url(self, sshd: SSHServer) -> str:
        return sshd.base_url()

    def test_driver_is_the_sftp_driver(self, driver) -> None:
        assert isinstance(driver, SFTPDriver)
