"""The VCS cache: one bare mirror per repository, shared by every daemon of the machine.

Layout under ``agent.vcs_cache.path`` (default ``~/.clearml/vcs-cache``)::

    github.com_org_repo.1a2b3c4d5e/        a bare repository: refs/heads/*, refs/tags/*, objects
    github.com_org_repo.1a2b3c4d5e.lock    its lock file (never removed)

The folder name is :meth:`RepoUrl.cache_key` made readable plus a hash of it, so the https and
ssh addresses of one repository share a mirror and two repositories never do.

Concurrency: ``flock`` on the lock file (:class:`~clearml_core.filelocks.SharedFileLock`). Creating and fetching take it exclusively;
reading (is the commit there? clone a working copy out of it) takes it shared, so a daemon never
copies a mirror that another one is replacing. Waiting for a lock watches the task's abort.

Nothing half-made is ever used: a mirror is cloned into ``<name>.tmp-<pid>`` and renamed into
place only once complete, so a failed or killed first clone leaves no mirror (leftover ``.tmp-``
folders are removed by the next daemon that holds the lock). Fetches only add objects and move
refs, which git does atomically; ``gc.auto`` is off in mirrors so no object a running task's
clone was made from disappears under it.

Warm path: when the task names a commit the mirror already has, nothing is fetched.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from clearml_core.filelocks import SharedFileLock
from clearml_core.vcs.auth import GitAccess
from clearml_core.vcs.errors import RevisionNotFoundError, VcsError
from clearml_core.vcs.git import Git, classify
from clearml_core.vcs.linkclone import branch_commit, config_quote, link_clone

_URL_LINE = re.compile(r"url\s*=")
HEADS_REFSPEC = "+refs/heads/*:refs/heads/*"
TAGS_REFSPEC = "+refs/tags/*:refs/tags/*"
FETCH_OPTIONS = ("--quiet", "--no-auto-gc", "--no-write-fetch-head")
"""A mirror never collects garbage (``gc.auto`` is 0) and resolves only its own refs, so a fetch
need not spawn ``git maintenance run --auto`` nor write ``FETCH_HEAD``: half a no-op fetch's time."""


@dataclass(frozen=True)
class Revision:
    """What a task asks for: a commit (full or short hash), else a tag, else a branch, else the
    repository's default branch."""

    commit: str = ""
    branch: str = ""
    tag: str = ""

    def refs(self) -> list[str]:
        """Names to try in a bare mirror, in order."""
        if self.commit:
            return [self.commit]
        if self.tag:
            return [f"refs/tags/{self.tag}"]
        if self.branch:
            return [f"refs/heads/{self.branch}"]
        return ["HEAD"]

    def describe(self) -> str:
        if self.commit:
            return f"commit {self.commit}"
        if self.tag:
            return f"tag {self.tag}"
        if self.branch:
            return f"branch {self.branch}"
        return "the default branch"


@dataclass
class MirrorState:
    path: Path
    commit: str
    created: bool = False
    fetched: bool = False


def resolve(git: Git, repo: Path, names: list[str]) -> str:
    """The full commit hash the first of ``names`` points to in ``repo``, or ``""``."""
    for name in names:
        if name.startswith("-"):  # never an option
            continue
        branch = branch_commit(repo, name)  # most tasks name a branch: no process for it
        if branch is not None:
            if branch:
                return branch
            continue
        result = git.run("rev-parse", "--verify", "--quiet", f"{name}^{{commit}}", cwd=repo, check=False)
        if result.ok and result.stdout.strip():
            return result.stdout.strip()
    return ""


def set_origin_url(git: Git, repo: Path, url: str) -> None:
    """Point ``origin`` of the fresh clone ``repo`` at ``url``: ``git remote set-url`` without
    its process (the one ``url =`` line of ``[remote "origin"]`` that ``git clone`` wrote is
    rewritten, quoted as git quotes); anything unexpected in the file is left to git."""
    config = repo / ".git" / "config"
    try:
        lines = config.read_text(encoding="utf-8").splitlines(keepends=True)
    except (OSError, UnicodeDecodeError):
        lines = []
    found: list[int] = []
    in_origin = False
    for number, line in enumerate(lines):
        text = line.strip()
        if text.startswith("["):
            in_origin = text == '[remote "origin"]'
        elif in_origin and _URL_LINE.match(text):
            found.append(number)
    if len(found) == 1 and not any(c in url for c in "\n\r\0"):
        lines[found[0]] = f"\turl = {config_quote(url)}\n"
        staging = config.with_name("config.clearml-tmp")
        staging.write_text("".join(lines), encoding="utf-8")
        os.replace(staging, config)
        return
    git.run("remote", "set-url", "origin", url, cwd=repo)


def is_full_hash(text: str) -> bool:
    return len(text) in (40, 64) and all(c in "0123456789abcdef" for c in text.lower())


DEFAULT_FETCH_ARGS = ("--all", "--tags", "--recurse-submodules")
"""clearml-agent's ``agent.git_fetch_args``."""
_NOT_FOR_A_MIRROR = {"--all", "--tags", "--recurse-submodules"}


def mirror_fetch_args(fetch_args: tuple[str, ...]) -> tuple[list[str], list[str]]:
    """``agent.git_fetch_args`` for a mirror's fetch: (options, refspecs).

    A mirror fetches its one remote by URL, which ``--all`` cannot take, and has no working tree
    for ``--recurse-submodules`` (submodules are checked out from their own mirrors); ``--tags``
    becomes the tags refspec, so leaving it out fetches no tags git would not follow anyway.
    Every other argument is passed on as it is.
    """
    refspecs = [HEADS_REFSPEC, TAGS_REFSPEC] if "--tags" in fetch_args else [HEADS_REFSPEC]
    return [arg for arg in fetch_args if arg not in _NOT_FOR_A_MIRROR], refspecs


class VcsCache:
    """Mirrors under ``root``; see the module docstring."""

    def __init__(
        self,
        root: Path,
        git: Git,
        *,
        clone_on_pull_fail: bool = False,
        fetch_args: tuple[str, ...] = DEFAULT_FETCH_ARGS,
    ) -> None:
        self.root = root.expanduser()
        self.git = git
        self.clone_on_pull_fail = clone_on_pull_fail
        self.fetch_args = fetch_args

    def mirror_path(self, access: GitAccess) -> Path:
        return self.root / access.url.cache_dir_name()

    def lock(self, mirror: Path, check_stop: Callable[[], None] | None = None) -> SharedFileLock:
        """The mirror's lock; waiting for it calls ``check_stop`` (which raises to give up)."""
        return SharedFileLock(mirror.with_name(mirror.name + ".lock"), check_stop)

    @staticmethod
    def exists(mirror: Path) -> bool:
        return (mirror / "HEAD").is_file() and (mirror / "objects").is_dir()

    def ensure(
        self, access: GitAccess, revision: Revision, check_stop: Callable[[], None] | None = None
    ) -> MirrorState:
        """A mirror of ``access.url`` that has ``revision``; fetches only when it must.

        Raises :class:`VcsError` (repository missing, credentials refused, revision gone).
        """
        mirror = self.mirror_path(access)
        lock = self.lock(mirror, check_stop)
        if revision.commit:
            with lock.hold(exclusive=False):
                if self.exists(mirror):
                    found = resolve(self.git, mirror, revision.refs())
                    if found:
                        return MirrorState(mirror, found)
        with lock.hold(exclusive=True):
            self._remove_leftovers(mirror)
            created = False
            if not self.exists(mirror):
                self._create(mirror, access)
                created = True
            elif revision.commit and (found := resolve(self.git, mirror, revision.refs())):
                return MirrorState(mirror, found)  # another daemon fetched it meanwhile
            else:
                try:
                    self._fetch(mirror, access)
                except VcsError:
                    if not self.clone_on_pull_fail:
                        raise
                    self.git.log(f"updating the cached mirror of {access.url} failed; cloning it again")
                    self._discard(mirror)
                    self._create(mirror, access)
                    created = True
            commit = resolve(self.git, mirror, revision.refs())
            if not commit and revision.commit and is_full_hash(revision.commit):
                # a commit no branch or tag holds (a pull request's head): servers may still give it
                self.git.run(
                    "fetch",
                    *FETCH_OPTIONS,
                    access.url.public(),
                    revision.commit,
                    cwd=mirror,
                    access=access,
                    check=False,
                )
                commit = resolve(self.git, mirror, revision.refs())
            if not commit:
                raise RevisionNotFoundError(
                    f"{revision.describe()} is not in {access.url}: it was never pushed there, or it was "
                    "deleted (force-push, removed branch); push it, or create the task again from a commit "
                    "the repository has"
                )
            return MirrorState(mirror, commit, created=created, fetched=True)

    def _create(self, mirror: Path, access: GitAccess) -> None:
        staging = mirror.with_name(f"{mirror.name}.tmp-{os.getpid()}")
        shutil.rmtree(staging, ignore_errors=True)
        try:
            result = self.git.run(
                "clone", "--bare", "--quiet", "--", access.url.public(), str(staging),
                access=access, check=False, show=True,
            )  # fmt: skip
            if not result.ok:
                raise classify(result, access, "clone")
            for key, value in (
                ("remote.origin.fetch", HEADS_REFSPEC),
                ("gc.auto", "0"),
                ("core.logAllRefUpdates", "false"),
            ):
                self.git.run("config", key, value, cwd=staging)
            staging.rename(mirror)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def _fetch(self, mirror: Path, access: GitAccess) -> None:
        options, refspecs = mirror_fetch_args(self.fetch_args)
        result = self.git.run(
            "fetch", *FETCH_OPTIONS, "--prune", "--force", *options, access.url.public(), *refspecs,
            cwd=mirror, access=access, check=False, show=True,
        )  # fmt: skip
        if not result.ok:
            raise classify(result, access, "fetch")

    def _discard(self, mirror: Path) -> None:
        doomed = mirror.with_name(f"{mirror.name}.tmp-old-{os.getpid()}")
        mirror.rename(doomed)
        shutil.rmtree(doomed, ignore_errors=True)

    def _remove_leftovers(self, mirror: Path) -> None:
        """``.tmp-`` folders of clones that died (only called with the exclusive lock held)."""
        for leftover in mirror.parent.glob(f"{mirror.name}.tmp-*"):
            shutil.rmtree(leftover, ignore_errors=True)

    def clone_out(
        self, mirror: Path, dest: Path, origin_url: str, check_stop: Callable[[], None] | None = None
    ) -> None:
        """A working copy of the mirror at ``dest`` whose ``origin`` is ``origin_url`` (objects
        hard-linked: fast, and independent of the mirror afterwards), nothing checked out yet."""
        with self.lock(mirror, check_stop).hold(exclusive=False):
            if link_clone(mirror, dest, origin_url):
                return
            self.git.run("clone", "--local", "--no-checkout", "--quiet", "--", str(mirror), str(dest))
        set_origin_url(self.git, dest, origin_url)


__all__ = ["MirrorState", "Revision", "VcsCache", "is_full_hash", "resolve", "set_origin_url"]
