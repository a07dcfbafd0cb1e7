from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _isolated(clearml_home):
    """Every test runs with a private HOME and no clearml.conf of the developer's."""
    return clearml_home


@pytest.fixture(scope="session")
def clearml_python(pytestconfig: pytest.Config) -> Path:
    """ClearML 2.x's interpreter in a side environment, built once and kept in pytest's cache."""
    from tests.clearml_side import clearml_python as build

    cache = getattr(pytestconfig, "cache", None)
    folder = cache.mkdir("clearml-side") if cache is not None else ROOT / ".local" / "clearml-side"
    return build(Path(folder) / "venv")


@pytest.fixture(scope="session")
def clearml_agent_python(pytestconfig: pytest.Config) -> Path:
    """clearml-agent's interpreter in a side environment, built once and kept in pytest's cache."""
    from tests.clearml_side import CLEARML_AGENT_REQUIREMENT
    from tests.clearml_side import clearml_python as build

    cache = getattr(pytestconfig, "cache", None)
    folder = (
        cache.mkdir("clearml-agent-side") if cache is not None else ROOT / ".local" / "clearml-agent-side"
    )
    return build(Path(folder) / "venv", packages=(CLEARML_AGENT_REQUIREMENT,))
