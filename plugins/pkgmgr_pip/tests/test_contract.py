"""The pip and uv managers pass the package-manager contract suite of clearml_core.testing.

With the kit's own fixtures (its local index, its configuration), as a plugin outside this
repository would run it: nothing here comes from the core's tests.
"""

from __future__ import annotations

from typing import Any

import pytest

from clearml_core.testing.environments import PackageManagerContract


class TestPip(PackageManagerContract):
    manager_name = "pip"

    @pytest.fixture
    def manager_settings(self) -> dict[str, Any]:
        return {"agent.package_manager.pip_version": []}  # no pip inside: faster, the same contract


class TestUv(PackageManagerContract):
    manager_name = "uv"
