"""``task create --repo PATH``: what is captured from a local working copy, and that the agent's
checkout of the captured record reproduces the files on disk."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clearml_core.controlplane import open_control_plane
from clearml_core.vcs.auth import GitAuth
from clearml_core.vcs.capture import MAX_UNTRACKED_BYTES, capture_working_copy, installed_packages
from clearml_core.vcs.checkout import Checkout
from clearml_core.vcs.errors import VcsError
from tests.helpers import run_cli

from .conftest import Repos, git, make_config


@pytest.fixture
def upstream(repos: Repos) -> Path:
    return repos.create(
        "upstream",
        {
            "train.py": "print('train')\n",
            "src/job.py": "print('job')\n",
            "requirements.txt": "six>=1.16  # helpers\n# comment\nidna\n",
            ".gitignore": "*.log\n",
        },
    )


@pytest.fixture
def work(tmp_path: Path, upstream: Path) -> Path:
    target = tmp_path / "work"
    git("clone", "-q", str(upstream), str(target))
    return target


def files(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and ".git" not in p.relative_to(root).parts
    }


def reproduce(tmp_path: Path, captured, name: str = "code") -> Path:  # type: ignore[no-untyped-def]
    dest = tmp_path / name
    Checkout(GitAuth(), cache_root=tmp_path / "cache").run(
        captured.repository, dest, commit=captured.commit, branch=captured.branch, diff=captured.diff
    )
    return dest


def test_a_clean_working_copy(clearml_conf: Path, upstream: Path, work: Path) -> None:
    captured = capture_working_copy(work, "train.py", config=make_config(clearml_conf, ""))
    assert captured.repository == upstream.as_uri()
    assert (captured.branch, captured.commit) == ("main", git("rev-parse", "HEAD", cwd=work))
    assert captured.diff == ""
    assert (captured.working_dir, captured.entry_point) == (".", "train.py")
    assert captured.requirements == ["six>=1.16", "idna"]
    assert captured.requirements_source == "requirements.txt"


def test_uncommitted_changes_are_reproduced(clearml_conf: Path, tmp_path: Path, work: Path) -> None:
    (work / "train.py").write_text("print('edited, unstaged')\n")
    (work / "src/job.py").write_text("print('edited, staged')\n")
    git("add", "src/job.py", cwd=work)
    git("rm", "-q", ".gitignore", cwd=work)
    (work / "new_module.py").write_text("VALUE = 42\n")
    (work / "data").mkdir()
    (work / "data/weights.bin").write_bytes(bytes(range(256)) * 4)
    (work / "ignored.log").write_text("not ignored any more: .gitignore is deleted\n")
    index_before = (work / ".git/index").read_bytes()
    status_before = git("status", "--porcelain", cwd=work)

    captured = capture_working_copy(work, "train.py", config=make_config(clearml_conf, ""))

    assert "new_module.py" in captured.diff and "GIT binary patch" in captured.diff
    assert (work / ".git/index").read_bytes() == index_before  # the user's index is untouched
    assert git("status", "--porcelain", cwd=work) == status_before
    dest = reproduce(tmp_path, captured)
    assert files(dest) == files(work)


def test_ignored_and_big_untracked_files_stay_out(clearml_conf: Path, tmp_path: Path, work: Path) -> None:
    (work / "run.log").write_text("ignored\n")
    (work / "big.bin").write_bytes(b"x" * (MAX_UNTRACKED_BYTES + 1))
    (work / "small.txt").write_text("small\n")
    captured = capture_working_copy(work, "train.py", config=make_config(clearml_conf, ""))
    assert "small.txt" in captured.diff
    assert "run.log" not in captured.diff and "big.bin" not in captured.diff
    assert any("big.bin" in warning for warning in captured.warnings)


def test_store_uncommitted_code_diff_off(clearml_conf: Path, work: Path) -> None:
    (work / "train.py").write_text("print('edited')\n")
    config = make_config(clearml_conf, "sdk.development.store_uncommitted_code_diff: false")
    assert capture_working_copy(work, "train.py", config=config).diff == ""


def test_diff_from_remote_carries_unpushed_commits(
    clearml_conf: Path, tmp_path: Path, upstream: Path, work: Path
) -> None:
    pushed = git("rev-parse", "HEAD", cwd=work)
    (work / "train.py").write_text("print('local commit')\n")
    git("commit", "-q", "-am", "local only", cwd=work)
    (work / "src/job.py").write_text("print('uncommitted')\n")
    local = capture_working_copy(work, "train.py", config=make_config(clearml_conf, ""))
    assert local.commit == git("rev-parse", "HEAD", cwd=work)
    assert any("not on any branch of remote 'origin'" in warning for warning in local.warnings)

    config = make_config(clearml_conf, "sdk.development.store_code_diff_from_remote: true")
    remote = capture_working_copy(work, "train.py", config=config)
    assert remote.commit == pushed
    assert "local commit" in remote.diff and "uncommitted" in remote.diff
    assert not remote.warnings
    assert files(reproduce(tmp_path, remote)) == files(work)


def test_a_working_copy_without_remote_is_a_file_url(
    clearml_conf: Path, tmp_path: Path, repos: Repos
) -> None:
    solo = repos.create("solo", {"tools/run.py": "print('solo')\n"})
    captured = capture_working_copy(solo / "tools", "run.py", config=make_config(clearml_conf, ""))
    assert captured.repository == solo.as_uri()
    assert (captured.working_dir, captured.entry_point) == ("tools", "run.py")
    assert captured.requirements == [] and not captured.warnings


def test_no_requirements_file_and_pip_freeze(clearml_conf: Path, repos: Repos) -> None:
    solo = repos.create("solo", {"run.py": "print('solo')\n"})
    assert capture_working_copy(solo, "run.py", config=make_config(clearml_conf, "")).requirements == []
    config = make_config(clearml_conf, "sdk.development.detect_with_pip_freeze: true")
    captured = capture_working_copy(solo, "run.py", config=config)
    assert captured.requirements_source == "pip freeze"
    names = {line.split("==")[0].split(" @ ")[0].lower() for line in captured.requirements}
    assert {"pluggy", "pyhocon", "typer"} <= names
    assert "pip" not in names
    packages, local = installed_packages()
    assert packages == captured.requirements
    assert "clearml-core" in local  # the workspace is installed from its folder: not reproducible elsewhere


@pytest.mark.parametrize(
    ("where", "script", "message"),
    [
        ("outside", "train.py", "not inside a git working copy"),
        ("work", "missing.py", "does not exist"),
        ("work", "/etc/hostname", "not inside the working copy"),
    ],
)
def test_mistakes(
    clearml_conf: Path, tmp_path: Path, work: Path, where: str, script: str, message: str
) -> None:
    folder = work if where == "work" else tmp_path / "outside"
    folder.mkdir(exist_ok=True)
    with pytest.raises(VcsError, match=message):
        capture_working_copy(folder, script, config=make_config(clearml_conf, ""))


def test_task_create_repo_dot(clearml_conf: Path, tmp_path: Path, upstream: Path, work: Path) -> None:
    (work / "src/job.py").write_text("print('edited')\n")
    result = run_cli(
        "task", "create", "--name", "captured", "--repo", str(work / "src"), "--script", "job.py", "--json"
    )
    assert result.code == 0, result.text
    shown = json.loads(result.out)
    script = shown["script"]
    assert script["repository"] == upstream.as_uri()
    assert (script["branch"], script["working_dir"], script["entry_point"]) == ("main", "src", "job.py")
    assert script["commit"] == git("rev-parse", "HEAD", cwd=work)
    assert "edited" in script["diff"]
    assert shown["requirements"]["pip"] == ["six>=1.16", "idna"]
    described = run_cli("task", "show", shown["id"])
    assert f"uncommitted diff: {len(script['diff'].splitlines())} lines" in described.out
    # explicit requirements win over the repository's file
    explicit = run_cli(
        "task", "create", "--name", "x", "--repo", str(work), "--script", "train.py", "--packages", "rich",
    )  # fmt: skip
    assert explicit.code == 0, explicit.text
    assert open_control_plane().get_task(explicit.out.strip()).requirements.pip == ["rich"]


def test_task_create_warns_about_unpushed_commits(clearml_conf: Path, work: Path) -> None:
    git("commit", "-q", "--allow-empty", "-m", "local", cwd=work)
    result = run_cli("task", "create", "--name", "x", "--repo", str(work), "--script", "train.py")
    assert result.code == 0, result.text
    assert "warning:" in result.err and "push it" in result.err


def test_credentials_in_the_remote_url_are_not_recorded(clearml_conf: Path, work: Path) -> None:
    git("remote", "set-url", "origin", "https://bob:hunter2-token@git.example.com/org/repo.git", cwd=work)
    captured = capture_working_copy(work, "train.py", config=make_config(clearml_conf, ""))
    assert captured.repository == "https://git.example.com/org/repo.git"
