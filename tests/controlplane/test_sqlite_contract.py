"""The embedded SQLite plane passes the control-plane conformance suite."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from clearml_core.controlplane.sqlite import SQLiteControlPlane
from clearml_core.testing.controlplane import ControlPlaneContract


class TestSQLiteControlPlane(ControlPlaneContract):
    @pytest.fixture
    def control_plane(self, tmp_path: Path) -> Iterator[SQLiteControlPlane]:
        plane = SQLiteControlPlane(tmp_path / "state.db")
        yield plane
        plane.close()
