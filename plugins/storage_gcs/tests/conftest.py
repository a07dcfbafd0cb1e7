"""Fixtures of the GCS plugin's tests: gcp-storage-emulator on loopback, isolated Google settings.

The emulator is one per test session (in memory, on a free port), stopped by its PID. It failing
to start is an error of every test that needs it, never a skip. Application default credentials
never ask the real metadata server from a test: google-auth reads these variables at import.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from clearml_core.testing.servers import free_port, server_process
from plugins.storage_gcs.tests.support import GOOGLE_VARIABLES, Emulator, emulator_command

os.environ["NO_GCE_CHECK"] = "true"
os.environ["GCE_METADATA_HOST"] = "127.0.0.1:9"
os.environ["GCE_METADATA_IP"] = "127.0.0.1:9"


@pytest.fixture(scope="session")
def gcs_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    port = free_port()
    workspace = tmp_path_factory.mktemp("gcs-emulator")
    log = workspace / "emulator.log"
    with server_process(emulator_command(port), port, log=log, name="the emulator", cwd=workspace) as process:
        yield Emulator(port, process.pid)


@pytest.fixture(scope="session")
def gcs_defaults_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("xdg-cache")


@pytest.fixture(autouse=True)
def _isolated_gcs(
    clearml_home: Path, gcs_defaults_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    """No developer Google settings (no gcloud login under HOME), fresh drivers and clients."""
    from clearml_core_storage_gcs.driver import reset_clients
    from clearml_core_storage_gcs.resolvers import reset_default_credentials_cache

    from clearml_core.credentials import reset_chains
    from clearml_core.storage.backends import reset_drivers

    for name in GOOGLE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(clearml_home / ".config" / "gcloud"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(gcs_defaults_cache))
    resets = (reset_drivers, reset_clients, reset_default_credentials_cache, reset_chains)
    for reset in resets:
        reset()
    yield clearml_home
    for reset in resets:
        reset()


@pytest.fixture
def emulated(gcs_emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> Emulator:
    """STORAGE_EMULATOR_HOST pointing at the session's emulator."""
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_emulator.endpoint)
    return gcs_emulator


@pytest.fixture
def conf_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "conf"
    folder.mkdir()
    return folder
