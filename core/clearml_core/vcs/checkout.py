"""Reproducing a task's code: the recorded commit (or branch, tag), submodules, uncommitted diff.

::

    mirror (VCS cache) ──clone --local──▶ <task>/code ──checkout commit──▶ submodules ──▶ git apply diff

With ``agent.vcs_cache.enabled`` the repository comes through its mirror
(:mod:`clearml_core.vcs.cache`): a commit the mirror has needs no network at all; the working
copy is a local clone whose objects are hard links into the mirror. Without the cache the
repository is cloned straight into the task's folder.

Submodules are checked out at the commits the superproject records (``git submodule update
--init --recursive`` semantics). Through the cache each submodule gets its own mirror: git is
told to clone it from the mirror, then the submodule's ``origin`` is set back to its real URL.

Every failure is a :class:`~clearml_core.vcs.errors.VcsError` whose message names the repository
(no password) and the fix; the agent's ``code`` stage turns it into the task's reason.
"""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from clearml_core.vcs.auth import GitAccess, GitAuth
from clearml_core.vcs.cache import DEFAULT_FETCH_ARGS, Revision, VcsCache, is_full_hash, resolve
from clearml_core.vcs.errors import DiffError, RevisionNotFoundError, VcsError
from clearml_core.vcs.git import Git, classify
from clearml_core.vcs.urls import parse_repo_url

if TYPE_CHECKING:
    from clearml_core.config import Config

DEFAULT_CACHE_PATH = "~/.clearml/vcs-cache"
ALLOW_LOCAL = "protocol.file.allow=always"
"""Submodules cloned from a local mirror (or a file:// URL) need this since git 2.38.1."""
MAX_SUBMODULE_DEPTH = 10


@dataclass
class CheckoutResult:
    """What was checked out, for the log and the task's ``runtime.code``."""

    repository: str
    url: str
    commit: str
    branch: str = ""
    tag: str = ""
    cached: bool = False
    fetched: bool = True
    mirror: str = ""
    submodules: list[str] = field(default_factory=list)
    diff_applied: bool = False
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "repository": self.repository,
            "url": self.url,
            "commit": self.commit,
            "branch": self.branch,
            "tag": self.tag,
            "vcs_cache": self.mirror if self.cached else "",
            "fetched": self.fetched,
            "submodules": list(self.submodules),
            "diff_applied": self.diff_applied,
            "seconds": round(self.seconds, 3),
        }


class Checkout:
    """Checks repositories out with one agent's settings (credentials, cache, rewrites)."""

    def __init__(
        self,
        auth: GitAuth,
        *,
        cache_root: Path | None,
        clone_on_pull_fail: bool = False,
        fetch_args: tuple[str, ...] = DEFAULT_FETCH_ARGS,
        log: Callable[[str], None] | None = None,
        check_stop: Callable[[], None] | None = None,
    ) -> None:
        self.auth = auth
        self.check_stop = check_stop
        self.git = Git(log=log, check_stop=check_stop, secrets=auth.secrets())
        self.cache = (
            VcsCache(cache_root, self.git, clone_on_pull_fail=clone_on_pull_fail, fetch_args=fetch_args)
            if cache_root is not None
            else None
        )

    @classmethod
    def from_config(
        cls,
        config: Config,
        *,
        log: Callable[[str], None] | None = None,
        check_stop: Callable[[], None] | None = None,
    ) -> Checkout:
        enabled = config.get_bool("agent.vcs_cache.enabled", True)
        root = config.path("agent.vcs_cache.path", DEFAULT_CACHE_PATH) if enabled else None
        return cls(
            GitAuth.from_config(config),
            cache_root=root,
            clone_on_pull_fail=config.get_bool("agent.vcs_cache.clone_on_pull_fail", False),
            fetch_args=tuple(str(arg) for arg in config.get_list("agent.git_fetch_args"))
            if "agent.git_fetch_args" in config
            else DEFAULT_FETCH_ARGS,
            log=log,
            check_stop=check_stop,
        )

    # -- the whole thing ------------------------------------------------------------------
    def run(
        self,
        repository: str,
        dest: Path,
        *,
        commit: str = "",
        branch: str = "",
        tag: str = "",
        diff: str = "",
    ) -> CheckoutResult:
        """Put ``repository`` at the revision into ``dest`` (which must not exist), submodules
        included, and apply ``diff``."""
        started = time.monotonic()
        for name, value in (("commit", commit), ("branch", branch), ("tag", tag)):
            if value.startswith("-") or any(c.isspace() for c in value):
                raise VcsError(f"the task's {name} {value!r} is not a valid git revision")
        access = self.auth.access(repository)
        self.git.add_secrets(*access.secrets)
        revision = Revision(commit=commit.strip(), branch=branch.strip(), tag=tag.strip())
        result = CheckoutResult(
            repository=parse_repo_url(repository).public(),
            url=access.url.public(),
            commit="",
            branch=revision.branch,
            tag=revision.tag,
        )
        self.git.log(
            f"checking out {access.url} at {revision.describe()}"
            + (" through the VCS cache" if self.cache else "")
        )
        if self.cache is not None:
            state = self.cache.ensure(access, revision, self.check_stop)
            result.cached, result.fetched, result.mirror = True, state.fetched, str(state.path)
            result.commit = state.commit
            self.cache.clone_out(state.path, dest, access.url.public(), self.check_stop)
        else:
            result.commit = self._clone_direct(access, revision, dest)
        self._check_out(dest, result.commit, revision.branch)
        result.submodules = self._submodules(dest, depth=0)
        if diff.strip():
            self.apply_diff(dest, diff, result.commit, access)
            result.diff_applied = True
        result.seconds = time.monotonic() - started
        return result

    # -- pieces ---------------------------------------------------------------------------
    def _clone_direct(self, access: GitAccess, revision: Revision, dest: Path) -> str:
        """No cache: clone into ``dest`` and find the revision there."""
        clone = self.git.run(
            "clone", "--no-checkout", "--quiet", "--", access.url.public(), str(dest),
            access=access, check=False, show=True,
        )  # fmt: skip
        if not clone.ok:
            shutil.rmtree(dest, ignore_errors=True)
            raise classify(clone, access, "clone")
        if revision.commit:
            names = [revision.commit]
        elif revision.tag:
            names = [f"refs/tags/{revision.tag}"]
        elif revision.branch:
            names = [f"refs/remotes/origin/{revision.branch}"]
        else:
            names = ["refs/remotes/origin/HEAD", "HEAD"]
        commit = resolve(self.git, dest, names)
        if not commit and revision.commit and is_full_hash(revision.commit):
            self.git.run("fetch", "--quiet", "origin", revision.commit, cwd=dest, access=access, check=False)
            commit = resolve(self.git, dest, names)
        if not commit:
            raise RevisionNotFoundError(
                f"{revision.describe()} is not in {access.url}: it was never pushed there, or it was deleted "
                "(force-push, removed branch); push it, or create the task again from a commit the repository has"
            )
        return commit

    def _check_out(self, repo: Path, commit: str, branch: str) -> None:
        if branch:
            args = ["checkout", "--quiet", "--force", "-B", branch, commit]
        else:
            args = ["checkout", "--quiet", "--force", "--detach", commit]
        result = self.git.run(*args, cwd=repo, check=False)
        if not result.ok:
            raise VcsError(f"cannot check out commit {commit[:12]}: {result.last_lines()}")

    def _submodules(self, repo: Path, *, depth: int) -> list[str]:
        """Initialise and check out the submodules of ``repo`` (recursively); their paths."""
        if not (repo / ".gitmodules").is_file():
            return []
        if depth >= MAX_SUBMODULE_DEPTH:
            raise VcsError(f"submodules nest deeper than {MAX_SUBMODULE_DEPTH} levels in {repo}")
        self.git.run("submodule", "init", "--quiet", cwd=repo)
        listed = self.git.run(
            "config", "--file", ".gitmodules", "--get-regexp", r"^submodule\..*\.path$", cwd=repo, check=False
        ).stdout
        done: list[str] = []
        for line in listed.splitlines():
            key, _, path = line.partition(" ")
            name = key[len("submodule.") : -len(".path")]
            gitlink = self.git.run("ls-tree", "HEAD", "--", path, cwd=repo).stdout.split()
            if len(gitlink) < 3 or gitlink[1] != "commit":
                continue  # listed in .gitmodules but not a submodule at this commit
            url = self.git.run(
                "config", "--get", f"submodule.{name}.url", cwd=repo, check=False
            ).stdout.strip()
            if not url:
                continue
            self._submodule(repo, name, path, url, gitlink[2])
            done.append(path)
            for nested in self._submodules(repo / path, depth=depth + 1):
                done.append(f"{path}/{nested}")
        return done

    def _submodule(self, repo: Path, name: str, path: str, url: str, commit: str) -> None:
        if self.check_stop is not None:
            self.check_stop()
        access = self.auth.access(url)
        self.git.add_secrets(*access.secrets)
        if self.cache is None:
            self.git.run("config", f"submodule.{name}.url", access.url.public(), cwd=repo)
            result = self.git.run(
                "submodule", "update", "--init", "--force", "--", path,
                cwd=repo, access=access, config=(ALLOW_LOCAL,), check=False, show=True,
            )  # fmt: skip
            if not result.ok:
                raise _submodule_error(path, classify(result, access, "clone"))
            return
        try:
            state = self.cache.ensure(access, Revision(commit=commit), self.check_stop)
        except VcsError as error:
            raise _submodule_error(path, error) from None
        with self.cache.lock(state.path, self.check_stop).hold(exclusive=False):
            self.git.run("config", f"submodule.{name}.url", str(state.path), cwd=repo)
            try:
                result = self.git.run(
                    "submodule", "update", "--init", "--force", "--", path,
                    cwd=repo, config=(ALLOW_LOCAL,), check=False, show=True,
                )  # fmt: skip
            finally:
                self.git.run("config", f"submodule.{name}.url", access.url.public(), cwd=repo)
        if not result.ok:
            raise _submodule_error(path, VcsError(result.last_lines()))
        self.git.run("remote", "set-url", "origin", access.url.public(), cwd=repo / path)

    def apply_diff(self, repo: Path, diff: str, commit: str, access: GitAccess) -> None:
        """Apply the task's recorded uncommitted changes; a diff that does not apply fails."""
        patch = Path(self.git.output("rev-parse", "--absolute-git-dir", cwd=repo)) / "clearml-task.diff"
        patch.write_text(diff if diff.endswith("\n") else diff + "\n", encoding="utf-8")
        result = self.git.run("apply", "--whitespace=nowarn", str(patch), cwd=repo, check=False)
        if not result.ok:
            said = _apply_errors(result.stderr)
            raise DiffError(
                f"the task's uncommitted changes (script.diff) do not apply to commit {commit[:12]} of "
                f"{access.url}: {said}; create the task again from the working copy, or clear its diff"
            )
        self.git.log(f"applied the task's uncommitted changes ({len(diff.splitlines())} diff lines)")


def _submodule_error(path: str, error: VcsError) -> VcsError:
    return type(error)(f"submodule {path}: {error}")


def _apply_errors(stderr: str) -> str:
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")] or lines
    text = "; ".join(re.sub(r"^error:\s*", "", line) for line in errors[:3])
    return text or "git apply failed"


__all__ = ["ALLOW_LOCAL", "DEFAULT_CACHE_PATH", "Checkout", "CheckoutResult"]
