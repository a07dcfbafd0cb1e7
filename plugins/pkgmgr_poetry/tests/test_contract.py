"""The poetry manager passes the package-manager contract suite of clearml_core.testing.

Its tasks are folder tasks whose folder is a project Poetry locked (``conftest``): the good one as
locked, the bad one with a lock whose hashes match no file of ``six``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from clearml_core.controlplane import Script, Task
from clearml_core.testing.environments import PackageManagerContract
from plugins.pkgmgr_poetry.tests import support
from plugins.pkgmgr_poetry.tests.conftest import PoetryTool


class TestPoetry(PackageManagerContract):
    manager_name = "poetry"
    expected_package = "six"

    @pytest.fixture
    def package_index(self, poetry_tool: PoetryTool) -> Any:
        """The index the locks name as their source: the installers see what they would in real use."""
        return poetry_tool.index

    @pytest.fixture
    def good_task(self, plain_project: Path, tmp_path: Path) -> Any:
        code = support.copy_project(plain_project, tmp_path / "good")
        return Task(script=Script(folder=str(code), entry_point="main.py"))

    @pytest.fixture
    def bad_task(self, plain_project: Path, tmp_path: Path) -> Any:
        code = support.copy_project(plain_project, tmp_path / "bad")
        support.tamper_hashes(code / "poetry.lock", "six")
        return Task(script=Script(folder=str(code), entry_point="main.py"))
