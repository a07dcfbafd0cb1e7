"""Fixtures of the poetry plugin's tests: Poetry in a side environment, projects it locked, configurations.

The projects are locked once per session against the package index of the environment (see
:mod:`support`); a test that changes one works on a copy.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from plugins.pkgmgr_poetry.tests import support
from tests.agent.conftest import daemons, plane, tasks  # noqa: F401  (fixtures)
from tests.environments.conftest import (  # noqa: F401  (fixtures)
    download_cache,
    env_config,
    index_root,
    offline_index,
)

ROOT = Path(__file__).resolve().parents[3]


@dataclass(frozen=True)
class PoetryTool:
    python: Path
    index: str
    cache: Path

    def lock(self, project: Path) -> Path:
        return support.lock(self.python, project, self.cache)

    def install(self, project: Path, venv: Path, *args: str) -> dict[str, str]:
        support.poetry_install(self.python, project, venv, *args, cache=self.cache)
        return support.venv_packages(venv)


@pytest.fixture(scope="session")
def poetry_tool(pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory) -> PoetryTool:
    """Poetry (and pip) in a side environment kept in pytest's cache; Poetry's downloads shared by the session."""
    cache = getattr(pytestconfig, "cache", None)
    folder = cache.mkdir("poetry-side") if cache is not None else ROOT / ".local" / "poetry-side"
    python = support.poetry_python(Path(folder) / "venv")
    return PoetryTool(python, support.simple_index_url(python), tmp_path_factory.mktemp("poetry-cache"))


@pytest.fixture(scope="session")
def plain_project(poetry_tool: PoetryTool, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """six in main, packaging in the dev group, tomli in the optional docs group, attrs behind the
    extra ``fancy``: locked by Poetry."""
    project = support.write_project(
        tmp_path_factory.mktemp("plain") / "project",
        poetry_tool.index,
        dependencies=["six>=1.16"],
        extras={"fancy": ["attrs"]},
        groups={"dev": (False, ["packaging"]), "docs": (True, ["tomli"])},
    )
    (project / "main.py").write_text("import six\nprint('six', six.__version__)\n", encoding="utf-8")
    poetry_tool.lock(project)
    return project


@dataclass(frozen=True)
class LocalProject:
    """A project whose lock has a git dependency and two path dependencies."""

    project: Path
    repository: Path
    commit: str


@pytest.fixture(scope="session")
def local_project(poetry_tool: PoetryTool, tmp_path_factory: pytest.TempPathFactory) -> LocalProject:
    """``gitdep`` from a real local git repository, ``pathdep`` from a folder of the project,
    ``devdep`` from a folder in develop mode (in the optional group ``local``): locked by Poetry."""
    root = tmp_path_factory.mktemp("local")
    commit = support.git_package(root / "repos", "gitdep", value="locked")
    project = root / "project"
    support.write_package(project / "libs" / "pathdep", "pathdep", value="path")
    support.write_package(project / "libs" / "devdep", "devdep", value="develop")
    support.write_project(
        project,
        poetry_tool.index,
        poetry_dependencies={
            "gitdep": f'{{git = "{(root / "repos" / "gitdep").as_uri()}", branch = "main"}}',
            "pathdep": '{path = "libs/pathdep"}',
        },
    )
    text = (project / "pyproject.toml").read_text(encoding="utf-8")
    text += "\n[tool.poetry.group.local]\noptional = true\n\n[tool.poetry.group.local.dependencies]\n"
    text += 'devdep = {path = "libs/devdep", develop = true}\n'
    (project / "pyproject.toml").write_text(text, encoding="utf-8")
    poetry_tool.lock(project)
    return LocalProject(project, root / "repos" / "gitdep", commit)
