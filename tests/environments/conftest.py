"""Fixtures of the environment tests: local wheels and indexes, offline installers, configurations."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from clearml_core.config import Config
from clearml_core.testing.packages import bundled_pip, make_config, make_index, make_wheel, offline
from tests.agent.conftest import daemons, plane, tasks  # noqa: F401  (fixtures of the agent tests)


@pytest.fixture(scope="session")
def download_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One download cache for the whole session: each wheel is fetched once."""
    return tmp_path_factory.mktemp("download-cache")


@pytest.fixture(scope="session")
def index_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A local simple index: tinypkg 1.0 and 2.0, alpha (needs tinypkg), beta, big (2 MB), and pip."""
    wheels = tmp_path_factory.mktemp("wheels")
    built = [
        make_wheel(wheels, "tinypkg", "1.0"),
        make_wheel(wheels, "tinypkg", "2.0"),
        make_wheel(wheels, "alpha", "1.0", requires=["tinypkg"]),
        make_wheel(wheels, "beta", "1.0"),
        make_wheel(wheels, "big", "1.0", payload_bytes=2_000_000),
        bundled_pip(),
    ]
    return make_index(tmp_path_factory.mktemp("index") / "simple", built)


@pytest.fixture
def offline_index(index_root: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Installers read only the local index (no PyPI, no pip.conf of the machine)."""
    offline(monkeypatch, index_root)
    return index_root


ConfigFactory = Callable[..., Config]


@pytest.fixture
def env_config(tmp_path: Path, download_cache: Path) -> ConfigFactory:
    """``env_config(**{"agent.package_manager.type": "uv"})``: a config with a private cache.

    pip is not put into environments (``pip_version: []``) unless a test asks for it.
    """
    count = [0]

    def factory(settings: dict[str, Any] | None = None, **more: Any) -> Config:
        count[0] += 1
        values: dict[str, Any] = {
            "agent.venvs_cache.path": str(tmp_path / "venvs-cache"),
            "agent.venvs_dir": str(tmp_path / "venvs-builds"),
            "agent.pip_download_cache.path": str(download_cache),
            "agent.package_manager.pip_version": [],
        }
        values.update(settings or {})
        values.update({key.replace("__", "."): value for key, value in more.items()})
        return make_config(tmp_path / f"clearml-{count[0]}.conf", values)

    return factory
