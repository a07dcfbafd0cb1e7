"""The pip and uv managers pass the package-manager contract suite of clearml_core.testing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from clearml_core.controlplane import Requirements, Task
from clearml_core.testing.environments import PackageManagerContract
from tests.environments.conftest import ConfigFactory


class _Offline(PackageManagerContract):
    expected_package = "alpha"

    @pytest.fixture
    def good_task(self) -> Task:
        return Task(requirements=Requirements(pip=["alpha"]))

    @pytest.fixture
    def bad_task(self) -> Task:
        return Task(requirements=Requirements(pip=["no-such-package-xyz"]))


class TestPip(_Offline):
    manager_name = "pip"

    @pytest.fixture
    def manager_config(self, env_config: ConfigFactory, offline_index: Path) -> Any:
        return env_config()


class TestUv(_Offline):
    manager_name = "uv"

    @pytest.fixture
    def manager_config(self, env_config: ConfigFactory, offline_index: Path) -> Any:
        return env_config({"agent.package_manager.type": "uv"})
