"""Fixtures of the Azure plugin's tests: a real Azurite on loopback, isolated Azure settings.

Azurite is one per test session (npm's ``azurite-blob``, in memory, on a free port), stopped by
its PID. It failing to start is an error of every test that needs it, never a skip.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from clearml_core.testing.servers import free_port, server_process
from plugins.storage_azure.tests.support import AZURE_VARIABLES, Azurite, azurite_command


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    port = free_port()
    workspace = tmp_path_factory.mktemp("azurite")
    log = workspace / "azurite.log"
    with server_process(azurite_command(port), port, log=log, name="Azurite", cwd=workspace) as process:
        yield Azurite(port, process.pid)


@pytest.fixture(scope="session")
def azure_defaults_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One parse cache of the defaults files for the whole session (HOME changes per test)."""
    return tmp_path_factory.mktemp("xdg-cache")


@pytest.fixture(autouse=True)
def _isolated_azure(
    clearml_home: Path, azure_defaults_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    """No developer Azure settings, no managed-identity lookups, fresh drivers and clients."""
    from clearml_core_storage_azure.driver import reset_clients

    from clearml_core.credentials import reset_chains
    from clearml_core.storage.backends import reset_drivers

    for name in AZURE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(azure_defaults_cache))
    for reset in (reset_drivers, reset_clients, reset_chains):
        reset()
    yield clearml_home
    for reset in (reset_drivers, reset_clients, reset_chains):
        reset()


@pytest.fixture
def conf_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "conf"
    folder.mkdir()
    return folder
