"""Real installs of real locks: what ``poetry install`` installs, exactly, by uv or by Poetry itself.

Every environment is compared with what Poetry installs from the same lock into an empty virtual
environment, or checked for the one thing the test is about (the locked git commit, a path
dependency's content, a hash that does not match).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from clearml_core.controlplane import Script, Task
from clearml_core.environments import BuildFailed, BuildLog
from clearml_core.environments.builder import EnvironmentBuilder, PreparedEnvironment
from clearml_core.environments.cache import EnvironmentCache
from plugins.pkgmgr_poetry.tests import support
from plugins.pkgmgr_poetry.tests.conftest import LocalProject, PoetryTool
from tests.environments.conftest import ConfigFactory

POETRY = {"agent.package_manager.type": "poetry"}


class Built:
    """A prepared environment and the lines its build logged."""

    def __init__(self, prepared: PreparedEnvironment, lines: list[str]) -> None:
        self.prepared = prepared
        self.lines = lines

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    @property
    def packages(self) -> dict[str, str]:
        return support.frozen_names(self.prepared.frozen)

    def python(self, code: str) -> str:
        done = subprocess.run([self.prepared.python, "-c", code], capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()


def prepare(config: Any, project: Path, tmp_path: Path, *, release: bool = True) -> Built:
    """The environment of a folder task whose code is ``project`` (a copy of it, as the agent makes)."""
    lines: list[str] = []
    builder = EnvironmentBuilder(config)
    context = builder.context(code_dir=project, working_dir=project)
    task = Task(script=Script(folder=str(project), entry_point="main.py"))
    log = BuildLog(lambda stream, line: lines.append(line))
    try:
        prepared = builder.prepare(task, context, log, tmp_path / f"private-{len(list(tmp_path.iterdir()))}")
    except BuildFailed as failed:
        failed.lines = lines  # type: ignore[attr-defined]
        raise
    if release:
        prepared.release()
    return Built(prepared, lines)


def complete_entries(config: Any) -> list[str]:
    cache = EnvironmentCache.from_config(config)
    assert cache is not None
    return [entry.key for entry in cache.entries() if entry.complete]


def versions(packages: dict[str, str]) -> dict[str, str]:
    """Registry packages by version; URL ones (git, folders) only by name: Poetry and uv write
    their URLs differently."""
    return {name: value if "://" not in value else "url" for name, value in packages.items()}


@pytest.mark.parametrize("args", [[], ["--with", "docs", "-E", "fancy", "--without", "dev"]])
def test_the_environment_holds_what_poetry_install_installs(
    args: list[str], plain_project: Path, poetry_tool: PoetryTool, env_config: ConfigFactory, tmp_path: Path
) -> None:
    config = env_config(POETRY, **{"agent.package_manager.poetry_install_extra_args": args})
    built = prepare(config, support.copy_project(plain_project, tmp_path / "code"), tmp_path)
    assert built.prepared.summary["installer"] == "uv" and "hash-checked" in built.text
    programs = [Path(line.split("$ ", 1)[1].split()[0]).name for line in built.lines if "$ " in line]
    assert programs == ["uv", "uv"]  # uv venv, uv pip install: no Poetry
    by_poetry = poetry_tool.install(plain_project, tmp_path / "poetry-venv", *args)
    assert built.packages == by_poetry
    expected = {"six"} | ({"packaging"} if not args else {"tomli", "attrs"})
    assert set(built.packages) == expected


def test_git_and_path_dependencies_install_as_locked(
    local_project: LocalProject, poetry_tool: PoetryTool, env_config: ConfigFactory, tmp_path: Path
) -> None:
    newer = local_project.repository / "gitdep" / "__init__.py"
    newer.write_text("VALUE = 'newer'\n")
    head = support.commit_all(local_project.repository, "after the lock")
    assert head != local_project.commit
    built = prepare(
        env_config(POETRY), support.copy_project(local_project.project, tmp_path / "code"), tmp_path
    )
    assert built.prepared.summary["installer"] == "uv"
    assert built.python("import gitdep, pathdep; print(gitdep.VALUE, pathdep.VALUE)") == "locked path"
    assert built.packages["gitdep"].endswith(f"@{local_project.commit}")
    assert versions(built.packages) == versions(
        poetry_tool.install(local_project.project, tmp_path / "poetry-venv")
    )


def test_a_path_dependency_is_keyed_by_its_content(
    local_project: LocalProject, env_config: ConfigFactory, tmp_path: Path
) -> None:
    config = env_config(POETRY)
    first = prepare(config, support.copy_project(local_project.project, tmp_path / "one"), tmp_path)
    same = prepare(config, support.copy_project(local_project.project, tmp_path / "two"), tmp_path)
    assert (first.prepared.source, same.prepared.source) == (
        "cache-build",
        "cache-hit",
    )  # new mtimes, same files
    changed = support.copy_project(local_project.project, tmp_path / "three")
    (changed / "libs" / "pathdep" / "pathdep" / "__init__.py").write_text("VALUE = 'changed'\n")
    again = prepare(config, changed, tmp_path)
    assert again.prepared.source == "cache-build" and again.prepared.key != first.prepared.key
    assert again.python("import pathdep; print(pathdep.VALUE)") == "changed"


def test_a_develop_mode_dependency_gets_an_environment_of_its_own(
    local_project: LocalProject, env_config: ConfigFactory, tmp_path: Path
) -> None:
    config = env_config(POETRY, **{"agent.package_manager.poetry_install_extra_args": ["--with", "local"]})
    code = support.copy_project(local_project.project, tmp_path / "code")
    built = prepare(config, code, tmp_path, release=False)
    try:
        assert built.prepared.source == "private" and "develop mode" in built.text
        assert built.python("import devdep; print(devdep.__file__)").startswith(str(code / "libs" / "devdep"))
    finally:
        built.prepared.release()
    assert complete_entries(config) == []


def test_a_file_that_does_not_match_the_locks_hash_is_refused(
    plain_project: Path, env_config: ConfigFactory, tmp_path: Path
) -> None:
    code = support.copy_project(plain_project, tmp_path / "code")
    support.tamper_hashes(code / "poetry.lock", "six")
    config = env_config(POETRY, **{"agent.pip_download_cache.enabled": False})
    with pytest.raises(BuildFailed) as failed:
        prepare(config, code, tmp_path)
    reason = str(failed.value)
    assert reason.startswith("installing poetry.lock failed: ") and "\n" not in reason
    assert "hash" in reason.lower() and "six" in reason
    assert complete_entries(config) == []


def test_poetry_itself_installs_the_lock_when_asked_and_is_kept_for_the_next(
    plain_project: Path, poetry_tool: PoetryTool, env_config: ConfigFactory, tmp_path: Path
) -> None:
    version = support.installed_poetry(poetry_tool.python)
    settings = {**POETRY, "agent.package_manager.poetry_installer": "poetry"}
    config = env_config(settings, **{"agent.package_manager.poetry_version": version})
    built = prepare(config, support.copy_project(plain_project, tmp_path / "code"), tmp_path)
    assert built.prepared.summary["installer"] == "poetry"
    assert (
        "installing poetry.lock with Poetry: agent.package_manager.poetry_installer is poetry" in built.text
    )
    assert f"installing poetry=={version} into a tool environment" in built.text
    assert built.packages == {"six": built.packages["six"], "packaging": built.packages["packaging"]}
    fast = prepare(env_config(POETRY), support.copy_project(plain_project, tmp_path / "fast"), tmp_path)
    assert built.packages == fast.packages
    extras = {"agent.package_manager.poetry_install_extra_args": ["-E", "fancy"]}
    again = prepare(
        env_config(settings, **{"agent.package_manager.poetry_version": version}, **extras),
        support.copy_project(plain_project, tmp_path / "again"),
        tmp_path,
    )
    assert "attrs" in again.packages and "into a tool environment" not in again.text


def test_a_lock_of_an_older_format_is_installed_by_poetry(
    plain_project: Path, poetry_tool: PoetryTool, env_config: ConfigFactory, tmp_path: Path
) -> None:
    code = support.copy_project(plain_project, tmp_path / "code")
    text = (code / "poetry.lock").read_text()
    text = re.sub(r"^(groups|markers) = .*\n", "", text, flags=re.M).replace(
        'lock-version = "2.1"', 'lock-version = "2.0"'
    )
    (code / "poetry.lock").write_text(text)
    version = support.installed_poetry(poetry_tool.python)
    built = prepare(env_config(POETRY, **{"agent.package_manager.poetry_version": version}), code, tmp_path)
    assert built.prepared.summary["installer"] == "poetry"
    assert "poetry.lock is lock format 2.0 (Poetry before 2.0)" in built.text
    assert set(built.packages) == {"six", "packaging"}


def test_a_poetry_that_cannot_be_installed_fails_the_build(
    plain_project: Path, env_config: ConfigFactory, tmp_path: Path
) -> None:
    settings = {
        **POETRY,
        "agent.package_manager.poetry_installer": "poetry",
        "agent.package_manager.poetry_version": "==0.0.1",
    }
    config = env_config(settings)
    with pytest.raises(BuildFailed) as failed:
        prepare(config, support.copy_project(plain_project, tmp_path / "code"), tmp_path)
    reason = str(failed.value)
    assert reason.startswith("installing poetry==0.0.1 (agent.package_manager.poetry_version) failed: ")
    assert "\n" not in reason
    assert complete_entries(config) == []  # neither the task's environment nor a Poetry


def test_an_interpreter_the_lock_was_not_made_for_is_refused(
    poetry_tool: PoetryTool, env_config: ConfigFactory, tmp_path: Path
) -> None:
    import platform

    newer = f"{platform.python_version_tuple()[0]}.{int(platform.python_version_tuple()[1]) + 1}"
    project = support.write_project(
        tmp_path / "code", poetry_tool.index, dependencies=["six"], requires_python=f">={newer}"
    )
    poetry_tool.lock(project)
    with pytest.raises(
        BuildFailed,
        match=rf"poetry\.lock is for Python >={newer} and the environment's interpreter is Python {platform.python_version()}: set agent\.python_binary",
    ):
        prepare(env_config(POETRY), project, tmp_path)
