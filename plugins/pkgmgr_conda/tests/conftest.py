"""Fixtures of the conda manager's tests: local channels (real conda packages, indexed by rattler),
configurations that use them, and the core tests' wheels, indexes and agent fixtures."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from clearml_core_pkgmgr_conda.testing import index_channel, make_package, pip_package, python_package

from clearml_core.config import Config
from tests.environments.conftest import (  # noqa: F401  (fixtures)
    daemons,
    download_cache,
    env_config,
    index_root,
    offline_index,
    plane,
    tasks,
)

CondaConfig = Callable[..., Config]


@pytest.fixture(scope="session")
def conda_channel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """python (this interpreter), pip, tinypkg 1.0 and 2.0, alpha (needs tinypkg), gpu-only (needs
    CUDA 12), cudnn 8.9.7 and 9.1.0, with-cudnn (needs cudnn)."""
    channel = tmp_path_factory.mktemp("conda-channel")
    python_package(channel)
    pip_package(channel)
    make_package(channel, "tinypkg", "1.0")
    make_package(channel, "tinypkg", "2.0")
    make_package(channel, "alpha", "1.0", depends=["tinypkg"])
    make_package(channel, "gpu-only", "1.0", depends=["__cuda >=12"])
    make_package(channel, "cudnn", "8.9.7")
    make_package(channel, "cudnn", "9.1.0")
    make_package(channel, "with-cudnn", "1.0", depends=["cudnn"])
    return index_channel(channel)


@pytest.fixture(scope="session")
def second_channel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A channel that also has tinypkg, newer: 3.0."""
    channel = tmp_path_factory.mktemp("conda-channel-2")
    make_package(channel, "tinypkg", "3.0")
    return index_channel(channel)


@pytest.fixture
def conda_config(
    tmp_path: Path,
    conda_channel: Path,
    env_config: Callable[..., Config],  # noqa: F811  (the fixture imported above)
) -> CondaConfig:
    """``conda_config(**{"agent.cuda_version": "12.2"})``: ``type: conda`` on the local channel, with
    the test's own caches (environments, packages, solves), CPU only unless a test says otherwise."""

    def factory(settings: dict[str, Any] | None = None, **more: Any) -> Config:
        values: dict[str, Any] = {
            "agent.package_manager.type": "conda",
            "agent.package_manager.conda_channels": [str(conda_channel)],
            "agent.pip_download_cache.path": str(tmp_path / "downloads"),
            "agent.cuda_version": 0,
        }
        values.update(settings or {})
        values.update({key.replace("__", "."): value for key, value in more.items()})
        return env_config(values)

    return factory
