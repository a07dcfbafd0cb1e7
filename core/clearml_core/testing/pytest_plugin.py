"""Fixtures every clearml-core test (and every plugin's tests) can use.

Loaded by pytest through the ``pytest11`` entry point; it must stay cheap to import.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# Variables that would leak the developer's own setup into a test.
_ISOLATED_VARIABLES = (
    "CLEARML_CONFIG_FILE",
    "CLEARML_CACHE_DIR",
    "CLEARML_CORE_DISABLE_PLUGINS",
    "CLEARML_CORE_DEBUG",
    "CLEARML_WORKER_ID",
    "CLEARML_WORKER_NAME",
    "CLEARML_REDIS_SERVICE_HOST",
    "CLEARML_REDIS_SERVICE_PORT",
)
# Credentials and overrides of the developer's own that must not reach a test.
_ISOLATED_PREFIXES = (
    "CLEARML__",
    "CLEARML_AGENT__",
    "AWS_",
    "AZURE_",
    "GOOGLE_",
    "MLFLOW_",
    "STORAGE_EMULATOR",
)


@pytest.fixture
def clearml_home(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    """A private home folder: no ~/clearml.conf, caches and state under the test's tmp_path.

    Also forgets the process-wide configuration and plugin registry before and after the test.
    """
    from clearml_core.plugins import reset_registry
    from clearml_core.settings import reset_config

    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    # parsed config defaults and entry points are cached per machine, not per test
    shared_cache = tmp_path_factory.getbasetemp() / "xdg-cache"
    shared_cache.mkdir(exist_ok=True)
    monkeypatch.setenv("XDG_CACHE_HOME", str(shared_cache))
    for name in _ISOLATED_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    from clearml_core.config.fixed_env import FIXED_VARIABLES

    for name in list(os.environ):
        if name in FIXED_VARIABLES or name.startswith(_ISOLATED_PREFIXES):
            monkeypatch.delenv(name)
    reset_config()
    reset_registry()
    yield home
    reset_config()
    reset_registry()


@pytest.fixture
def clearml_conf(clearml_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Path of a clearml.conf the test writes; CLEARML_CONFIG_FILE points at it."""
    path = clearml_home / "clearml.conf"
    path.write_text("", encoding="utf-8")
    monkeypatch.setenv("CLEARML_CONFIG_FILE", str(path))
    return path


@pytest.fixture
def clearml_server(tmp_path: Path) -> Iterator[Any]:
    """A ``clearml-core server`` on free 127.0.0.1 ports with its own SQLite control plane, as a
    :class:`~clearml_core.testing.clearml_server.ClearMLServer` (URLs, access key and secret)."""
    from clearml_core.testing.clearml_server import run_clearml_server

    with run_clearml_server(tmp_path / "clearml-server") as server:
        yield server
