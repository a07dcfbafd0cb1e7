"""Checking repositories out through the VCS cache and without it, against real repositories."""

from __future__ import annotations

from pathlib import Path

import pytest

from clearml_core.vcs.auth import GitAuth
from clearml_core.vcs.checkout import Checkout
from clearml_core.vcs.errors import (
    DiffError,
    GitCommandError,
    RepositoryNotFoundError,
    RepositoryUnreachableError,
    RevisionNotFoundError,
)

from .conftest import GitDaemon, Repos, free_port, git, make_config, serve


def checkout(tmp_path: Path, *, cache: bool = True, lines: list[str] | None = None) -> Checkout:
    return Checkout(
        GitAuth(),
        cache_root=tmp_path / "vcs-cache" if cache else None,
        log=lines.append if lines is not None else None,
    )


def mirrors(tmp_path: Path) -> list[str]:
    root = tmp_path / "vcs-cache"
    return sorted(p.name for p in root.iterdir() if p.is_dir()) if root.exists() else []


@pytest.fixture
def project(repos: Repos) -> Path:
    return repos.create("project", {"main.py": "print('v1')\n", "lib/util.py": "X = 1\n"})


@pytest.mark.parametrize("cache", [True, False], ids=["cache", "no-cache"])
def test_commit_branch_tag_and_default(tmp_path: Path, repos: Repos, project: Path, cache: bool) -> None:
    first = repos.head(project)
    git("checkout", "-q", "-b", "feature", cwd=project)
    feature = repos.commit(project, {"main.py": "print('feature')\n"})
    git("tag", "v2", cwd=project)
    git("checkout", "-q", "main", cwd=project)
    main = repos.commit(project, {"main.py": "print('main')\n"})
    co = checkout(tmp_path, cache=cache)
    url = project.as_uri()

    result = co.run(url, tmp_path / "by-commit", commit=first)
    assert result.commit == first and (tmp_path / "by-commit/main.py").read_text() == "print('v1')\n"
    assert git("rev-parse", "HEAD", cwd=tmp_path / "by-commit") == first

    result = co.run(url, tmp_path / "by-branch", branch="feature")
    assert result.commit == feature
    assert git("symbolic-ref", "--short", "HEAD", cwd=tmp_path / "by-branch") == "feature"

    assert co.run(url, tmp_path / "by-tag", tag="v2").commit == feature
    assert co.run(url, tmp_path / "default", commit=first[:10]).commit == first
    assert co.run(url, tmp_path / "head").commit == main
    # the working copy points at the repository, not at the mirror
    assert git("remote", "get-url", "origin", cwd=tmp_path / "by-branch") == url
    assert len(mirrors(tmp_path)) == (1 if cache else 0)


def test_a_cached_commit_is_not_fetched_again(tmp_path: Path, repos: Repos, project: Path) -> None:
    commit = repos.head(project)
    co = checkout(tmp_path)
    first = co.run(project.as_uri(), tmp_path / "a", commit=commit)
    assert first.fetched and first.cached
    second = co.run(project.as_uri(), tmp_path / "b", commit=commit)
    assert not second.fetched and second.mirror == first.mirror
    # a branch is always brought up to date
    newer = repos.commit(project, {"main.py": "print('v2')\n"})
    third = co.run(project.as_uri(), tmp_path / "c", branch="main")
    assert third.fetched and third.commit == newer
    # and a commit the mirror lacks is fetched
    newest = repos.commit(project, {"main.py": "print('v3')\n"})
    assert co.run(project.as_uri(), tmp_path / "d", commit=newest).commit == newest


def test_the_working_copy_survives_its_mirror(tmp_path: Path, repos: Repos, project: Path) -> None:
    import shutil

    co = checkout(tmp_path)
    result = co.run(project.as_uri(), tmp_path / "code", branch="main")
    shutil.rmtree(result.mirror)
    assert git("status", "--porcelain", cwd=tmp_path / "code") == ""
    assert git("log", "--oneline", cwd=tmp_path / "code")


def test_diff_is_applied(tmp_path: Path, repos: Repos, project: Path) -> None:
    commit = repos.head(project)
    work = tmp_path / "wc"
    git("clone", "-q", str(project), str(work))
    (work / "main.py").write_text("print('edited')\n")
    (work / "lib/util.py").unlink()
    (work / "new.py").write_text("NEW = True\n")
    git("add", "-N", "new.py", cwd=work)
    diff = git("diff", "HEAD", "--binary", cwd=work) + "\n"
    result = checkout(tmp_path).run(project.as_uri(), tmp_path / "code", commit=commit, diff=diff)
    assert result.diff_applied
    code = tmp_path / "code"
    assert (code / "main.py").read_text() == "print('edited')\n"
    assert not (code / "lib/util.py").exists()
    assert (code / "new.py").read_text() == "NEW = True\n"


def test_a_diff_that_does_not_apply_fails_clearly(tmp_path: Path, repos: Repos, project: Path) -> None:
    diff = (
        "diff --git a/main.py b/main.py\n--- a/main.py\n+++ b/main.py\n@@ -1 +1 @@\n"
        "-print('something else')\n+print('x')\n"
    )
    with pytest.raises(DiffError) as raised:
        checkout(tmp_path).run(project.as_uri(), tmp_path / "code", diff=diff)
    message = str(raised.value)
    assert "do not apply" in message and "main.py" in message and repos.head(project)[:12] in message


def test_a_commit_that_is_gone(tmp_path: Path, repos: Repos, project: Path) -> None:
    git("checkout", "-q", "-b", "doomed", cwd=project)
    doomed = repos.commit(project, {"main.py": "print('doomed')\n"})
    git("checkout", "-q", "main", cwd=project)
    git("branch", "-D", "doomed", cwd=project)
    git("reflog", "expire", "--expire=now", "--all", cwd=project)
    git("gc", "-q", "--prune=now", cwd=project)
    for cache in (True, False):
        with pytest.raises(RevisionNotFoundError) as raised:
            checkout(tmp_path, cache=cache).run(project.as_uri(), tmp_path / f"code{cache}", commit=doomed)
        assert f"commit {doomed}" in str(raised.value) and "never pushed" in str(raised.value)
    with pytest.raises(RevisionNotFoundError, match="branch nope"):
        checkout(tmp_path).run(project.as_uri(), tmp_path / "code-b", branch="nope")
    # the mirror itself is fine and serves the next task
    assert checkout(tmp_path).run(project.as_uri(), tmp_path / "ok", branch="main").commit == repos.head(
        project
    )


def test_a_repository_that_does_not_exist_leaves_no_mirror(tmp_path: Path) -> None:
    missing = (tmp_path / "nowhere" / "repo.git").as_uri()
    with pytest.raises(RepositoryNotFoundError) as raised:
        checkout(tmp_path).run(missing, tmp_path / "code")
    assert "does not exist" in str(raised.value) and missing in str(raised.value)
    assert mirrors(tmp_path) == []
    assert not list((tmp_path / "vcs-cache").glob("*.tmp-*"))
    with pytest.raises(RepositoryNotFoundError):
        checkout(tmp_path, cache=False).run(missing, tmp_path / "code2")
    assert not (tmp_path / "code2").exists()


def test_git_daemon(tmp_path: Path, repos: Repos, project: Path, git_daemon: GitDaemon) -> None:
    serve(repos, project, git_daemon.base, "project.git")
    result = checkout(tmp_path).run(git_daemon.url("project.git"), tmp_path / "code", branch="main")
    assert result.commit == repos.head(project)
    assert (tmp_path / "code/main.py").exists()
    with pytest.raises(RepositoryNotFoundError) as raised:
        checkout(tmp_path).run(git_daemon.url("missing.git"), tmp_path / "code2")
    assert git_daemon.url("missing.git") in str(raised.value)


def test_nobody_listening(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/repo.git"
    with pytest.raises(RepositoryUnreachableError, match="cannot be reached"):
        checkout(tmp_path).run(url, tmp_path / "code")
    assert mirrors(tmp_path) == []


def test_leftovers_of_a_killed_clone_are_removed(tmp_path: Path, repos: Repos, project: Path) -> None:
    co = checkout(tmp_path)
    name = co.cache.mirror_path(co.auth.access(project.as_uri())).name  # type: ignore[union-attr]
    leftover = tmp_path / "vcs-cache" / f"{name}.tmp-99999"
    (leftover / "objects").mkdir(parents=True)
    co.run(project.as_uri(), tmp_path / "code")
    assert not leftover.exists()
    assert mirrors(tmp_path) == [name]


def test_clone_on_pull_fail_replaces_a_broken_mirror(tmp_path: Path, repos: Repos, project: Path) -> None:
    co = checkout(tmp_path)
    result = co.run(project.as_uri(), tmp_path / "a", branch="main")
    # break the mirror: every git command in it fails from now on
    Path(result.mirror, "config").write_text("[broken\n")
    newer = repos.commit(project, {"main.py": "print('v2')\n"})
    with pytest.raises(GitCommandError, match="bad config"):
        co.run(project.as_uri(), tmp_path / "b", branch="main")
    healing = Checkout(GitAuth(), cache_root=tmp_path / "vcs-cache", clone_on_pull_fail=True)
    assert healing.run(project.as_uri(), tmp_path / "c", branch="main").commit == newer


def submodule_tree(repos: Repos) -> tuple[Path, Path, Path]:
    """top → lib (relative URL ../lib) → deep (absolute file URL): nested submodules."""
    deep = repos.create("deep", {"deep.txt": "deep v1\n"})
    lib = repos.create("lib", {"lib.py": "LIB = 1\n"})
    git("submodule", "add", "-q", deep.as_uri(), "vendor/deep", cwd=lib)
    git("commit", "-q", "-m", "deep", cwd=lib)
    top = repos.create("top", {"main.py": "print('top')\n"})
    git("submodule", "add", "-q", "../lib", "lib", cwd=top)
    git("commit", "-q", "-m", "lib", cwd=top)
    return top, lib, deep


@pytest.mark.parametrize("cache", [True, False], ids=["cache", "no-cache"])
def test_submodules(tmp_path: Path, repos: Repos, cache: bool) -> None:
    top, lib, deep = submodule_tree(repos)
    lib_commit = repos.head(lib)
    # the submodules move on; the checkout follows what top records, not their heads
    repos.commit(lib, {"lib.py": "LIB = 2\n"})
    repos.commit(deep, {"deep.txt": "deep v2\n"})
    result = checkout(tmp_path, cache=cache).run(top.as_uri(), tmp_path / "code", branch="main")
    code = tmp_path / "code"
    assert result.submodules == ["lib", "lib/vendor/deep"]
    assert (code / "lib/lib.py").read_text() == "LIB = 1\n"
    assert (code / "lib/vendor/deep/deep.txt").read_text() == "deep v1\n"
    assert git("rev-parse", "HEAD", cwd=code / "lib") == lib_commit
    assert git("remote", "get-url", "origin", cwd=code / "lib") == lib.as_uri()
    if cache:
        assert len(mirrors(tmp_path)) == 3  # top, lib and deep each have a mirror
        again = checkout(tmp_path).run(top.as_uri(), tmp_path / "again", branch="main")
        assert again.submodules == result.submodules


def test_a_missing_submodule_fails_with_its_path(tmp_path: Path, repos: Repos) -> None:
    top = repos.create("top", {"main.py": "print('top')\n"})
    lib = repos.create("lib", {"lib.py": "LIB = 1\n"})
    git("submodule", "add", "-q", lib.as_uri(), "ext/lib", cwd=top)
    git("commit", "-q", "-m", "lib", cwd=top)
    import shutil

    shutil.rmtree(lib)
    with pytest.raises(RepositoryNotFoundError, match="submodule ext/lib"):
        checkout(tmp_path).run(top.as_uri(), tmp_path / "code", branch="main")


@pytest.mark.parametrize(
    "url", ["https://example.com/a b#c;d.git", 'https://example.com/q"uo\\te.git', "/plain/path"]
)
def test_origin_is_set_without_git_as_git_would(
    tmp_path: Path, repos: Repos, project: Path, url: str
) -> None:
    from clearml_core.vcs.cache import set_origin_url
    from clearml_core.vcs.git import Git

    git("clone", "--quiet", "--no-checkout", str(project), str(tmp_path / "copy"))
    set_origin_url(Git(), tmp_path / "copy", url)
    assert git("config", "--get-all", "remote.origin.url", cwd=tmp_path / "copy") == url
    assert git("remote", "get-url", "origin", cwd=tmp_path / "copy") == url
    assert (
        git("config", "--get", "remote.origin.fetch", cwd=tmp_path / "copy")
        == "+refs/heads/*:refs/remotes/origin/*"
    )


def test_git_fetch_args_shape_the_mirror_fetch(
    tmp_path: Path, repos: Repos, project: Path, clearml_conf: Path
) -> None:
    # a tag on a commit no branch holds: only an explicit tags fetch brings it (git's tag
    # auto-following takes tags of fetched history only)
    def tag_a_dangling_commit(name: str) -> str:
        git("checkout", "-q", "-b", f"tmp-{name}", cwd=project)
        commit = repos.commit(project, {"main.py": f"print('{name}')\n"})
        git("tag", name, cwd=project)
        git("checkout", "-q", "main", cwd=project)
        git("branch", "-q", "-D", f"tmp-{name}", cwd=project)
        return commit

    with_tags = Checkout.from_config(
        make_config(clearml_conf, f'agent.vcs_cache.path: "{tmp_path / "c1"}"\n')
    )
    with_tags.run(project.as_uri(), tmp_path / "a", branch="main")  # creates the mirror
    tagged = tag_a_dangling_commit("t1")
    assert with_tags.run(project.as_uri(), tmp_path / "b", tag="t1").commit == tagged  # the default: --tags

    no_tags = Checkout.from_config(
        make_config(
            clearml_conf,
            f'agent.vcs_cache.path: "{tmp_path / "c2"}"\nagent.git_fetch_args: ["--all", "--recurse-submodules"]\n',
        )
    )
    no_tags.run(project.as_uri(), tmp_path / "c", branch="main")
    tag_a_dangling_commit("t2")
    with pytest.raises(RevisionNotFoundError):
        no_tags.run(project.as_uri(), tmp_path / "d", tag="t2")

    # any other argument reaches git as it is
    odd = Checkout.from_config(
        make_config(
            clearml_conf,
            f'agent.vcs_cache.path: "{tmp_path / "c1"}"\nagent.git_fetch_args: ["--no-such-flag"]\n',
        )
    )
    with pytest.raises(GitCommandError, match="cannot fetch"):  # git refuses the unknown flag
        odd.run(project.as_uri(), tmp_path / "e", branch="main")
