"""The in-process clone of a mirror gives what ``git clone --local --no-checkout`` gives."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from clearml_core.vcs.linkclone import link_clone
from tests.vcs.conftest import Repos, git

URL = 'https://example.com/org/"odd" repo.git'


@pytest.fixture
def mirror(repos: Repos) -> Path:
    """A mirror with packed refs (from its clone) and loose ones (from a later fetch): branches
    with slashes, a light and an annotated tag, a default branch other than ``main``."""
    project = repos.create("project", {"a.py": "A = 1\n", "bin/run.sh": "#!/bin/sh\n"})
    os.chmod(project / "bin" / "run.sh", 0o755)
    repos.commit(project, {"bin/run.sh": "#!/bin/sh\necho run\n"})
    git("tag", "v1", cwd=project)
    git("tag", "-a", "v1-annotated", "-m", "one", cwd=project)
    git("checkout", "-q", "-b", "feature/deep/x", cwd=project)
    repos.commit(project, {"b.py": "B = 2\n"})
    git("checkout", "-q", "-b", "trunk", cwd=project)
    mirror = repos.bare(project)
    git("symbolic-ref", "HEAD", "refs/heads/trunk", cwd=mirror)
    repos.commit(project, {"c.py": "C = 3\n"})
    git("tag", "-a", "v2", "-m", "two", cwd=project)
    git(
        "fetch",
        "-q",
        "--force",
        str(project),
        "+refs/heads/*:refs/heads/*",
        "+refs/tags/*:refs/tags/*",
        cwd=mirror,
    )
    assert (mirror / "packed-refs").is_file() and (mirror / "refs" / "heads" / "trunk").is_file()
    return mirror


def refs(repo: Path) -> str:
    return git("for-each-ref", "--format=%(refname) %(objectname) %(*objectname) %(symref)", cwd=repo)


def test_same_refs_config_and_files_as_git(tmp_path: Path, mirror: Path) -> None:
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    assert link_clone(mirror, ours, URL)
    git("clone", "-q", "--local", "--no-checkout", str(mirror), str(theirs))
    git("remote", "set-url", "origin", URL, cwd=theirs)

    assert refs(ours) == refs(theirs)
    for key in (
        "remote.origin.url",
        "remote.origin.fetch",
        "branch.trunk.remote",
        "branch.trunk.merge",
        "core.bare",
    ):
        assert git("config", "--get", key, cwd=ours) == git("config", "--get", key, cwd=theirs)
    assert git("symbolic-ref", "HEAD", cwd=ours) == git("symbolic-ref", "HEAD", cwd=theirs)
    assert git("rev-parse", "@{upstream}", cwd=ours) == git("rev-parse", "@{upstream}", cwd=theirs)
    git("fsck", "--strict", "--no-dangling", cwd=ours)

    for repo in (ours, theirs):
        git("checkout", "-q", "--force", "-B", "feature/deep/x", "origin/feature/deep/x", cwd=repo)
        assert git("status", "--porcelain", cwd=repo) == ""
    assert os.access(ours / "bin" / "run.sh", os.X_OK)
    assert sorted(p.relative_to(ours).as_posix() for p in ours.rglob("*.py")) == ["a.py", "b.py"]
    assert git("describe", "--tags", "origin/trunk", cwd=ours) == git(
        "describe", "--tags", "origin/trunk", cwd=theirs
    )


def test_objects_are_linked_and_the_copy_outlives_the_mirror(tmp_path: Path, mirror: Path) -> None:
    import shutil

    assert link_clone(mirror, tmp_path / "copy", URL)
    objects = [p for p in (mirror / "objects").rglob("*") if p.is_file()]
    assert objects
    for path in objects:
        linked = tmp_path / "copy" / ".git" / "objects" / path.relative_to(mirror / "objects")
        assert linked.stat().st_ino == path.stat().st_ino
    shutil.rmtree(mirror)
    git("checkout", "-q", "--force", "--detach", "origin/trunk", cwd=tmp_path / "copy")
    assert (tmp_path / "copy" / "c.py").read_text() == "C = 3\n"


@pytest.mark.parametrize(
    "change",
    [
        "alternates",
        "shallow",
        "format",
        "symbolic branch",
    ],
)
def test_what_it_does_not_reproduce_is_left_to_git(tmp_path: Path, mirror: Path, change: str) -> None:
    if change == "alternates":
        (mirror / "objects" / "info" / "alternates").write_text(str(tmp_path / "elsewhere") + "\n")
    elif change == "shallow":
        (mirror / "shallow").write_text(git("rev-parse", "trunk", cwd=mirror) + "\n")
    elif change == "format":
        git("config", "core.repositoryformatversion", "1", cwd=mirror)
        git("config", "extensions.worktreeConfig", "true", cwd=mirror)
    else:
        git("symbolic-ref", "refs/heads/alias", "refs/heads/trunk", cwd=mirror)
    assert not link_clone(mirror, tmp_path / "copy", URL)
    assert not (tmp_path / "copy").exists()


def test_a_fetch_lock_left_behind_is_ignored(tmp_path: Path, mirror: Path) -> None:
    (mirror / "refs" / "heads" / "trunk.lock").write_text("")
    assert link_clone(mirror, tmp_path / "copy", URL)
    assert "trunk.lock" not in refs(tmp_path / "copy")


def test_branch_commits_are_read_as_git_reads_them(mirror: Path) -> None:
    from clearml_core.vcs.linkclone import branch_commit

    packed = "refs/heads/feature/deep/x"
    assert not (mirror / packed).exists()
    assert (mirror / "refs" / "heads" / "trunk").is_file()
    for ref in (packed, "refs/heads/trunk", "refs/heads/main"):
        assert branch_commit(mirror, ref) == git("rev-parse", "--verify", ref, cwd=mirror)
    assert branch_commit(mirror, "refs/heads/nothing") == ""
    assert branch_commit(mirror, "refs/tags/v1") is None  # a tag may need peeling: git's job
    git("symbolic-ref", "refs/heads/alias", "refs/heads/trunk", cwd=mirror)
    assert branch_commit(mirror, "refs/heads/alias") is None
