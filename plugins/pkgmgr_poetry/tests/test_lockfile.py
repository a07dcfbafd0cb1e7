"""Reading a project as ``poetry install`` does: its lock is current or not, which groups and extras.

The locks are real ones, written by Poetry (``conftest``); what the plugin concludes from them is
compared with what Poetry itself does with them.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from clearml_core_pkgmgr_poetry.lockfile import read_lock
from clearml_core_pkgmgr_poetry.options import choose, parse_install_args
from clearml_core_pkgmgr_poetry.project import LockError, content_hash, lock_is_current, read_project

from clearml_core.errors import UserError
from plugins.pkgmgr_poetry.tests.conftest import LocalProject, PoetryTool


def test_the_content_hash_is_the_one_poetry_wrote(plain_project: Path, local_project: LocalProject) -> None:
    for project in (plain_project, local_project.project):
        lock = read_lock(project / "poetry.lock")
        data = read_project(project / "pyproject.toml").data
        assert lock.content_hash == content_hash(data)


def test_a_changed_pyproject_makes_the_lock_stale_for_poetry_and_for_us(
    plain_project: Path, poetry_tool: PoetryTool, tmp_path: Path
) -> None:
    project = tmp_path / "project"
    shutil.copytree(plain_project, project)
    text = (project / "pyproject.toml").read_text()
    (project / "pyproject.toml").write_text(text.replace('"six>=1.16"', '"six>=1.16", "idna"'))
    lock = read_lock(project / "poetry.lock")
    assert not lock_is_current(read_project(project / "pyproject.toml"), lock.content_hash, lock.generator)
    with pytest.raises(AssertionError, match="changed significantly"):
        poetry_tool.install(project, tmp_path / "venv")
    # a change Poetry does not hash (the description) keeps the lock current, for both
    (project / "pyproject.toml").write_text(text.replace('version = "0.1.0"', 'version = "0.2.0"'))
    assert lock_is_current(read_project(project / "pyproject.toml"), lock.content_hash, lock.generator)


def test_a_broken_lock_says_what_is_wrong_and_what_to_do(tmp_path: Path) -> None:
    broken = tmp_path / "poetry.lock"
    broken.write_text('[[package]]\nname = "six"\nversion = \n', encoding="utf-8")
    with pytest.raises(LockError, match=r"is not a usable poetry\.lock: .*run `poetry lock`"):
        read_lock(broken)
    broken.write_text('[[package]]\nname = "six"\n\n[metadata]\nlock-version = "2.1"\n', encoding="utf-8")
    with pytest.raises(LockError, match=r"a \[\[package\]\] has no 'version'"):
        read_lock(broken)
    broken.write_text("# nothing\n", encoding="utf-8")
    with pytest.raises(LockError, match=r"no \[metadata\] lock-version"):
        read_lock(broken)


@pytest.mark.parametrize(
    ("args", "groups", "extras"),
    [
        ([], ["dev", "main"], []),  # every non-optional group, as `poetry install`
        (["--with", "docs"], ["dev", "docs", "main"], []),
        (["--without=dev"], ["main"], []),
        (["--only", "main,docs"], ["docs", "main"], []),
        (["--all-groups", "-E", "fancy"], ["dev", "docs", "main"], ["fancy"]),
        (["--all-extras", "-v", "--no-root"], ["dev", "main"], ["fancy"]),
    ],
)
def test_groups_and_extras_follow_poetrys_rules(
    plain_project: Path, args: list[str], groups: list[str], extras: list[str]
) -> None:
    project = read_project(plain_project / "pyproject.toml")
    chosen = choose(parse_install_args(tuple(args)), project, read_lock(plain_project / "poetry.lock"))
    assert (list(chosen.groups), list(chosen.extras)) == (groups, extras)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--with", "nope"], r"names dependency groups the project does not have: nope \(via --with\)"),
        (["-E", "nope"], r"asks for extras poetry\.lock does not have: nope; it has fancy"),
        (["--all-groups", "--only", "main"], r"--all-groups cannot go with"),
        (["--with"], r"--with needs a value"),
    ],
)
def test_a_group_or_extra_the_project_lacks_is_an_error(
    plain_project: Path, args: list[str], message: str
) -> None:
    project = read_project(plain_project / "pyproject.toml")
    with pytest.raises(UserError, match=message):
        choose(parse_install_args(tuple(args)), project, read_lock(plain_project / "poetry.lock"))


def test_arguments_only_poetry_knows_are_left_to_poetry() -> None:
    parsed = parse_install_args(("--with", "docs", "--only-root", "--dry-run", "-n"))
    assert parsed.foreign == ("--only-root", "--dry-run")
