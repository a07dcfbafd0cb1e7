"""Real Poetry projects for the tests and the benchmark: Poetry in a side environment, real locks.

Poetry (and pip, to ask it where PyPI is) is installed once into a side virtual environment
(:func:`tests.clearml_side.clearml_python` builds it: ``uv venv`` + ``uv pip install``, a marker,
a lock). Projects are locked by that Poetry against the package index of the environment the
tests run in, declared as the project's primary source: Poetry's own PyPI source reads a JSON API
that some registry mirrors do not serve, while every index serves the simple API. The index is
never written here: it is the one uv would use (``UV_DEFAULT_INDEX``, ``UV_INDEX_URL``), else
pip's (``PIP_INDEX_URL``, pip.conf), else pip's default, asked of pip itself.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path

from clearml_core_pkgmgr_pip.pipconfig import read_index_config

from tests.clearml_side import _REAL_ENV, clearml_python, installed_version

POETRY_REQUIREMENT = "poetry>=2,<3"
GIT = ["git", "-c", "user.name=tests", "-c", "user.email=tests@localhost", "-c", "commit.gpgsign=false"]


def poetry_python(venv: Path) -> Path:
    """The interpreter of a side environment with Poetry and pip, built on first use."""
    return clearml_python(venv.absolute(), packages=(POETRY_REQUIREMENT, "pip"))


def installed_poetry(python: Path) -> str:
    """The version of the side environment's Poetry (``2.5.1``)."""
    return installed_version(python, POETRY_REQUIREMENT)


def simple_index_url(python: Path) -> str:
    """The simple index the environment's installers use (see the module documentation)."""
    for name in ("UV_DEFAULT_INDEX", "UV_INDEX_URL"):
        if _REAL_ENV.get(name, "").startswith(("http://", "https://")):
            return _REAL_ENV[name]
    configured = read_index_config(_REAL_ENV).index_url
    if configured.startswith(("http://", "https://")):
        return configured
    asked = subprocess.run(
        [str(python), "-c", "from pip._internal.models.index import PyPI; print(PyPI.simple_url)"],
        capture_output=True,
        text=True,
        env=_REAL_ENV,
        check=True,
    )
    return asked.stdout.strip()


def poetry_env(cache: Path) -> dict[str, str]:
    """The environment Poetry runs with: the real one (its downloads shared), no virtualenv of ours."""
    env = {k: v for k, v in _REAL_ENV.items() if not k.startswith(("VIRTUAL_ENV", "POETRY_"))}
    env["POETRY_CACHE_DIR"] = str(cache)
    env["POETRY_NO_INTERACTION"] = "1"
    return env


def write_project(
    folder: Path,
    index: str,
    *,
    dependencies: Sequence[str] = (),
    groups: Mapping[str, tuple[bool, Sequence[str]]] | None = None,
    extras: Mapping[str, Sequence[str]] | None = None,
    poetry_dependencies: Mapping[str, str] | None = None,
    requires_python: str = ">=3.10",
    name: str = "demo",
) -> Path:
    """A Poetry 2 project (PEP 621 table, ``package-mode = false``) with ``index`` as its primary source.

    ``groups`` maps a group to (optional, requirements); ``poetry_dependencies`` are Poetry-style
    inline tables (``{git = "…"}``, ``{path = "…", develop = true}``) for the main group.
    """
    folder.mkdir(parents=True, exist_ok=True)
    text = f'[project]\nname = "{name}"\nversion = "0.1.0"\nrequires-python = "{requires_python}"\n'
    if dependencies or not poetry_dependencies:
        text += f"dependencies = {_toml_list(dependencies)}\n"
    else:
        text += 'dynamic = ["dependencies"]\n'  # all in [tool.poetry.dependencies]
    if extras:
        text += "\n[project.optional-dependencies]\n"
        text += "".join(f"{extra} = {_toml_list(items)}\n" for extra, items in extras.items())
    text += "\n[tool.poetry]\npackage-mode = false\n"
    if poetry_dependencies:
        text += "\n[tool.poetry.dependencies]\n"
        text += "".join(f"{dep} = {spec}\n" for dep, spec in poetry_dependencies.items())
    for group, (optional, items) in (groups or {}).items():
        if optional:
            text += f"\n[tool.poetry.group.{group}]\noptional = true\n"
        text += f"\n[tool.poetry.group.{group}.dependencies]\n"
        text += "".join(f'{item} = "*"\n' for item in items)
    text += f'\n[[tool.poetry.source]]\nname = "index"\nurl = "{index}"\npriority = "primary"\n'
    (folder / "pyproject.toml").write_text(text, encoding="utf-8")
    return folder


def _toml_list(items: Sequence[str]) -> str:
    return "[" + ", ".join(f'"{item}"' for item in items) + "]"


def poetry(python: Path, project: Path, *args: str, cache: Path, env: Mapping[str, str] | None = None) -> str:
    """Run ``poetry ARGS`` in ``project``; its output, or an AssertionError with it."""
    done = subprocess.run(
        [str(python.parent / "poetry"), *args],
        cwd=project,
        capture_output=True,
        text=True,
        env={**poetry_env(cache), **(env or {})},
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, f"poetry {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def lock(python: Path, project: Path, cache: Path) -> Path:
    """``poetry lock`` in ``project``; the lock file."""
    poetry(python, project, "lock", cache=cache)
    return project / "poetry.lock"


def poetry_install(python: Path, project: Path, venv: Path, *args: str, cache: Path) -> None:
    """What ``poetry install --no-root ARGS`` installs into the empty virtual environment ``venv``."""
    uv = shutil.which("uv", path=_REAL_ENV.get("PATH"))
    interpreter = sys.executable
    if uv:
        make = [uv, "venv", "-q", "--no-project", "--python", interpreter, str(venv)]
    else:
        make = [interpreter, "-m", "venv", "--without-pip", str(venv)]
    subprocess.run(make, check=True, env=_REAL_ENV, capture_output=True)
    poetry(
        python,
        project,
        "install",
        "--no-root",
        *args,
        cache=cache,
        env={"VIRTUAL_ENV": str(venv), "POETRY_VIRTUALENVS_PATH": str(venv.parent / "poetry-envs")},
    )


def git_package(folder: Path, name: str, version: str = "0.1.0", value: str = "1") -> str:
    """A real git repository holding the pure-Python package ``name`` (``VALUE`` in its module);
    its HEAD commit."""
    package = folder / name
    package.mkdir(parents=True, exist_ok=True)
    write_package(package, name, version, value)
    subprocess.run([*GIT, "init", "--quiet", "-b", "main", str(package)], check=True)
    return commit_all(package, "first")


def commit_all(repository: Path, message: str) -> str:
    subprocess.run([*GIT, "-C", str(repository), "add", "-A"], check=True)
    subprocess.run([*GIT, "-C", str(repository), "commit", "--quiet", "-m", message], check=True)
    return subprocess.run(
        ["git", "-C", str(repository), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()


def write_package(folder: Path, name: str, version: str = "0.1.0", value: str = "1") -> Path:
    """A pure-Python package project (built by poetry-core) at ``folder``."""
    module = name.replace("-", "_")
    (folder / module).mkdir(parents=True, exist_ok=True)
    (folder / module / "__init__.py").write_text(f"VALUE = {value!r}\n", encoding="utf-8")
    (folder / "pyproject.toml").write_text(
        textwrap.dedent(
            f"""\
            [project]
            name = "{name}"
            version = "{version}"

            [build-system]
            requires = ["poetry-core>=2.0"]
            build-backend = "poetry.core.masonry.api"
            """
        ),
        encoding="utf-8",
    )
    return folder


def tamper_hashes(lock_file: Path, name: str) -> None:
    """Change every file hash the lock has for package ``name`` (a file that is not the locked one)."""
    pattern = rf'(\[\[package\]\]\nname = "{name}"\n.*?\n\n)'
    head, package, tail = re.split(pattern, lock_file.read_text(encoding="utf-8"), maxsplit=1, flags=re.S)
    package = re.sub(r'hash = "sha256:\w{8}', 'hash = "sha256:00000000', package)
    lock_file.write_text(head + package + tail, encoding="utf-8")


def copy_project(source: Path, target: Path) -> Path:
    """A copy of a locked project (a task's checkout of it)."""
    shutil.copytree(source, target, ignore=shutil.ignore_patterns(".venv"))
    return target


def frozen_names(lines: Sequence[str]) -> dict[str, str]:
    """``name==version`` / ``name @ url`` lines → {name: version or url}."""
    found = {}
    for line in lines:
        name, _, rest = line.partition("==") if "==" in line else line.partition(" @ ")
        found[name.strip().lower().replace("_", "-")] = rest.strip()
    return found


def venv_packages(venv: Path) -> dict[str, str]:
    """{name: version} of what is installed in ``venv`` (its ``*.dist-info``)."""
    from clearml_core.environments import PythonEnv, freeze_environment

    return {
        name: value
        for name, value in frozen_names(freeze_environment(PythonEnv(venv))).items()
        if name not in {"pip", "setuptools", "wheel"}
    }
