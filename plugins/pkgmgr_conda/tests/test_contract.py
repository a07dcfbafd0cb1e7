"""The conda manager passes the package-manager contract suite of clearml_core.testing, on a local
channel built with the plugin's own testing helpers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from clearml_core.controlplane import Requirements, Task
from clearml_core.testing.environments import PackageManagerContract


class TestConda(PackageManagerContract):
    manager_name = "conda"
    expected_package = "alpha"

    @pytest.fixture
    def package_index(self, conda_channel: Path) -> Any:
        return conda_channel

    @pytest.fixture
    def manager_settings(self, package_index: Path) -> dict[str, Any]:
        return {"agent.package_manager.conda_channels": [str(package_index)], "agent.cuda_version": 0}

    @pytest.fixture
    def good_task(self) -> Any:
        return Task(requirements=Requirements(conda="dependencies: [alpha]"))

    @pytest.fixture
    def bad_task(self) -> Any:
        return Task(requirements=Requirements(conda="dependencies: [no-such-package]"))
