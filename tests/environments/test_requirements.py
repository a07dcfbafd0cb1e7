"""A task's requirement lines: where they come from, how they are read, what goes into the key."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from clearml_core.controlplane import Requirements, Task
from clearml_core.environments.requirements import (
    RequirementsError,
    canonical_name,
    parse_requirement_lines,
    parse_requirements_file,
    task_requirements,
)
from clearml_core.testing.packages import make_config, make_wheel


def test_names_are_normalised_as_pep_503_says() -> None:
    assert canonical_name("Foo_Bar.baz") == "foo-bar-baz"
    assert canonical_name("scikit__learn") == "scikit-learn"


def test_a_file_is_read_the_way_pip_reads_it(tmp_path: Path) -> None:
    (tmp_path / "base.txt").write_text("Requests[socks] >= 2.0  # http\n", encoding="utf-8")
    wheel = make_wheel(tmp_path / "dist", "tinypkg")
    (tmp_path / "requirements.txt").write_text(
        "# a comment\n"
        "\n"
        "-r base.txt\n"
        "numpy==1.26.4 ; python_version < '3.13'\n"
        "--extra-index-url https://example.invalid/simple\n"
        "-c constraints.txt\n"
        "torch \\\n"
        "   >=2.0\n"
        "./dist/tinypkg-1.0-py3-none-any.whl\n"
        "six @ https://example.invalid/six-1.17.0-py2.py3-none-any.whl\n"
        "git+https://example.invalid/org/repo.git@v1#egg=Repo_Pkg\n",
        encoding="utf-8",
    )
    (tmp_path / "constraints.txt").write_text("numpy<2\n", encoding="utf-8")
    found = parse_requirements_file(tmp_path / "requirements.txt", source="requirements.txt")
    assert found.texts == [
        "Requests[socks] >= 2.0",
        "numpy==1.26.4 ; python_version < '3.13'",
        "--extra-index-url https://example.invalid/simple",
        f"-c {tmp_path / 'constraints.txt'}",
        "torch >=2.0",
        str(wheel),
        "six @ https://example.invalid/six-1.17.0-py2.py3-none-any.whl",
        "git+https://example.invalid/org/repo.git@v1#egg=Repo_Pkg",
    ]
    assert [line.kind for line in found.lines] == [
        "requirement",
        "requirement",
        "option",
        "option",
        "requirement",
        "path",
        "requirement",
        "url",
    ]
    assert found.names() == {"requests", "numpy", "torch", "tinypkg", "six", "repo-pkg"}
    assert dict(found.digests).keys() == {str(wheel), str(tmp_path / "constraints.txt")}
    assert found.cacheable and found.source == "requirements.txt"


def test_a_changed_local_wheel_changes_the_key_data(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path, "tinypkg")
    before = parse_requirement_lines([str(wheel)]).key_data()
    assert parse_requirement_lines([str(wheel)]).key_data() == before
    os.utime(wheel, ns=(1, 1))
    assert parse_requirement_lines([str(wheel)]).key_data() != before


def test_a_local_source_folder_is_fingerprinted_by_its_files(tmp_path: Path) -> None:
    project = tmp_path / "pkg"
    project.mkdir()
    (project / "setup.py").write_text("x = 1\n", encoding="utf-8")
    before = parse_requirement_lines(["./pkg"], base_dir=tmp_path).key_data()
    (project / "module.py").write_text("y = 2\n", encoding="utf-8")
    after = parse_requirement_lines(["./pkg"], base_dir=tmp_path)
    assert after.key_data() != before and after.texts == [str(project)] and after.cacheable


def test_an_editable_local_install_is_not_cacheable(tmp_path: Path) -> None:
    found = parse_requirement_lines(["-e .", "six"], base_dir=tmp_path)
    assert found.texts == [f"-e {tmp_path}", "six"]
    assert not found.cacheable and "-e ." in found.uncacheable_reason
    remote = parse_requirement_lines(["-e git+https://example.invalid/r.git#egg=r"])
    assert remote.cacheable and remote.names() == {"r"}


def test_include_loops_and_missing_files_say_what_is_wrong(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("-r b.txt\n", encoding="utf-8")
    (tmp_path / "b.txt").write_text("-r a.txt\n", encoding="utf-8")
    with pytest.raises(RequirementsError, match="loop"):
        parse_requirements_file(tmp_path / "a.txt")
    (tmp_path / "c.txt").write_text("-r missing.txt\n", encoding="utf-8")
    with pytest.raises(RequirementsError, match=r"missing\.txt \(included from .*c\.txt\)"):
        parse_requirements_file(tmp_path / "c.txt")


def test_an_empty_set_is_falsy_even_with_options() -> None:
    assert not parse_requirement_lines(["# nothing", "--extra-index-url https://example.invalid/simple"])
    assert parse_requirement_lines(["six"])


def test_the_record_wins_over_the_file_unless_forced(tmp_path: Path) -> None:
    code = tmp_path / "code"
    (code / "src").mkdir(parents=True)
    (code / "requirements.txt").write_text("from-root\n", encoding="utf-8")
    task = Task(requirements=Requirements(pip=["from-record", "  "]))
    found = task_requirements(task, code_dir=code, working_dir=code / "src")
    assert found.texts == ["from-record"] and found.source == "task"
    bare = task_requirements(Task(), code_dir=code, working_dir=code / "src")
    assert bare.texts == ["from-root"] and bare.source == "requirements.txt"
    (code / "src" / "requirements.txt").write_text("from-working-dir\n", encoding="utf-8")
    bare = task_requirements(Task(), code_dir=code, working_dir=code / "src")
    assert bare.texts == ["from-working-dir"] and bare.source == os.path.join("src", "requirements.txt")
    forced = make_config(tmp_path / "c.conf", {"agent.package_manager.force_repo_requirements_txt": True})
    found = task_requirements(task, code_dir=code, working_dir=code / "src", config=forced)
    assert found.texts == ["from-working-dir"]
    assert not task_requirements(Task(), code_dir=None, working_dir=None)


def test_relative_paths_of_the_record_are_relative_to_the_working_dir(tmp_path: Path) -> None:
    code = tmp_path / "code"
    wheel = make_wheel(code / "src" / "wheels", "tinypkg")
    task = Task(requirements=Requirements(pip=["wheels/tinypkg-1.0-py3-none-any.whl"]))
    found = task_requirements(task, code_dir=code, working_dir=code / "src")
    assert found.texts == [str(wheel)] and found.names() == {"tinypkg"}
