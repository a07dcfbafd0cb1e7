from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _isolated(clearml_home):
    """Every test runs with a private HOME and no clearml.conf of the developer's."""
    return clearml_home
