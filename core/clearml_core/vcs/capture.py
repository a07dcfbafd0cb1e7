"""Capturing a local git working copy when a task is created from it (``task create --repo .``).

Recorded, so that an agent on another machine reproduces exactly the state on disk:

* **repository**: the URL of the remote the current branch tracks (else ``origin``, else the only
  remote), with any password removed; a working copy with no remote is recorded as the
  ``file://`` URL of its root (the task then runs only where that path exists).
* **branch**: the tracked remote branch's name (else the local branch; none when detached).
* **commit**: ``HEAD`` — or, with ``sdk.development.store_code_diff_from_remote``, the head of the
  tracked remote branch, so unpushed commits travel in the diff.
* **diff** (``sdk.development.store_uncommitted_code_diff``): every change between that commit and
  the files on disk — staged and unstaged changes to tracked files, deletions, and untracked
  files that ``.gitignore`` does not exclude (ClearML's SDK stores ``git diff`` only, which misses
  staged changes and new files; a new script you have not ``git add``-ed yet runs remotely here).
  Untracked files over :data:`MAX_UNTRACKED_BYTES` are left out with a warning; changes inside
  submodules are not captured. The user's index is never touched: the diff is computed with a
  private copy of it (``GIT_INDEX_FILE``).
* **requirements**: the repository's ``requirements.txt`` (next to the entry point's working dir,
  else at the root), else — with ``sdk.development.detect_with_pip_freeze`` — the packages
  installed in the environment running clearml-core (``pip freeze`` semantics; packages installed
  from local folders are left out, with a warning).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from clearml_core.vcs.errors import VcsError
from clearml_core.vcs.git import Git
from clearml_core.vcs.urls import looks_like_url, parse_repo_url

if TYPE_CHECKING:
    from clearml_core.config import Config

log = logging.getLogger(__name__)

MAX_UNTRACKED_BYTES = 1024 * 1024
REQUIREMENTS_FILE = "requirements.txt"
FREEZE_SKIP = {"pip", "setuptools", "wheel", "distribute"}
"""What ``pip freeze`` leaves out too."""


@dataclass
class CapturedCode:
    """A working copy's state, ready to become a task's script and requirements."""

    root: Path
    repository: str
    branch: str
    commit: str
    diff: str
    working_dir: str
    entry_point: str
    requirements: list[str] = field(default_factory=list)
    requirements_source: str = ""
    warnings: list[str] = field(default_factory=list)


def working_copy_root(path: str | Path, git: Git | None = None) -> Path | None:
    """The root of the git working copy containing ``path``, or None."""
    folder = Path(path).expanduser().resolve()
    if folder.is_file():
        folder = folder.parent
    if not folder.is_dir():
        return None
    git = git or Git()
    result = git.run("rev-parse", "--show-toplevel", cwd=folder, check=False)
    return Path(result.stdout.strip()).resolve() if result.ok and result.stdout.strip() else None


def capture_working_copy(
    path: str | Path,
    script: str,
    *,
    config: Config,
    commit: str = "",
    branch: str = "",
    working_dir: str = ".",
) -> CapturedCode:
    """Capture the working copy containing ``path`` (see the module docstring).

    ``script`` is relative to ``path`` (or absolute, inside the working copy); the task's working
    dir becomes ``path`` relative to the root. An explicit ``commit`` is recorded as given, with
    no diff (the changes on disk are relative to ``HEAD``, not to it).
    """
    git = Git()
    where = Path(path).expanduser().resolve()
    root = working_copy_root(where, git)
    if root is None:
        raise VcsError(
            f"--repo {path}: {where} is not inside a git working copy; give a path inside one, or the "
            "repository's URL (https://…, ssh://…, git@host:org/repo.git, file:///path)"
        )
    if where.is_file():
        where = where.parent
    warnings: list[str] = []
    head = git.run("rev-parse", "--verify", "--quiet", "HEAD^{commit}", cwd=root, check=False).stdout.strip()
    if not head:
        raise VcsError(f"the working copy {root} has no commit yet; commit something first")

    remote, remote_branch = _tracked(git, root)
    local_branch = git.run("symbolic-ref", "--short", "-q", "HEAD", cwd=root, check=False).stdout.strip()
    if remote:
        url = git.run("remote", "get-url", remote, cwd=root, check=False).stdout.strip()
        if url and not looks_like_url(url) and not Path(url).expanduser().is_absolute():
            url = str((root / url).resolve())  # a remote given as a path relative to the working copy
        parsed = parse_repo_url(url) if url else None
        repository = parsed.without_credentials().public() if parsed and parsed.is_http else url
        if parsed is not None and parsed.is_local:
            repository = parsed.public()
    else:
        repository = root.as_uri()
    recorded_branch = branch or remote_branch or local_branch

    store_diff = config.get_bool("sdk.development.store_uncommitted_code_diff", True)
    from_remote = config.get_bool("sdk.development.store_code_diff_from_remote", False)
    base = head
    if commit:
        base = commit
        store_diff = False
    elif from_remote:
        upstream = ""
        if remote and remote_branch:
            upstream = git.run(
                "rev-parse", "--verify", "--quiet", f"refs/remotes/{remote}/{remote_branch}^{{commit}}",
                cwd=root, check=False,
            ).stdout.strip()  # fmt: skip
        if upstream:
            base = upstream
        else:
            warnings.append(
                "sdk.development.store_code_diff_from_remote is set but the branch tracks no remote branch; "
                "recording the local commit"
            )
    diff = _diff(git, root, base, warnings) if store_diff else ""
    if remote and not commit and base == head and not _on_remote(git, root, head):
        warnings.append(
            f"commit {head[:12]} is not on any branch of remote {remote!r} that this working copy knows; "
            "push it before an agent runs the task (or set sdk.development.store_code_diff_from_remote)"
        )

    rel_dir = where.relative_to(root).as_posix() if where != root else "."
    entry = Path(script).expanduser()
    target = entry if entry.is_absolute() else where / entry
    target = target.resolve()
    if not target.is_file():
        raise VcsError(f"--script {script}: {target} does not exist")
    try:
        target.relative_to(root)
    except ValueError:
        raise VcsError(f"--script {script} is not inside the working copy {root}") from None
    if working_dir not in ("", "."):
        rel_dir = working_dir
        entry_point = Path(script).as_posix()
    else:
        try:
            entry_point = target.relative_to(where).as_posix()
        except ValueError:  # ../other/script.py: run from the root
            rel_dir, entry_point = ".", target.relative_to(root).as_posix()

    captured = CapturedCode(
        root=root,
        repository=repository,
        branch=recorded_branch,
        commit=base,
        diff=diff,
        working_dir=rel_dir,
        entry_point=entry_point,
        warnings=warnings,
    )
    _requirements(captured, root / rel_dir, config)
    for warning in captured.warnings:
        log.warning(warning)
    return captured


def _tracked(git: Git, root: Path) -> tuple[str, str]:
    """(remote, branch on it) that the current branch tracks; else (origin or the only remote, "")."""
    upstream = git.run(
        "rev-parse", "--abbrev-ref", "--symbolic-full-name", "@{upstream}", cwd=root, check=False
    ).stdout.strip()
    remotes = git.run("remote", cwd=root, check=False).stdout.split()
    if upstream and "/" in upstream:
        for remote in sorted(remotes, key=len, reverse=True):  # remote names may contain "/"
            if upstream.startswith(remote + "/"):
                return remote, upstream[len(remote) + 1 :]
    if "origin" in remotes:
        return "origin", ""
    if len(remotes) == 1:
        return remotes[0], ""
    return "", ""


def _on_remote(git: Git, root: Path, commit: str) -> bool:
    listed = git.run("branch", "--remotes", "--contains", commit, cwd=root, check=False)
    return bool(listed.ok and listed.stdout.strip())


def _diff(git: Git, root: Path, base: str, warnings: list[str]) -> str:
    """Everything between ``base`` and the files on disk, via a private copy of the index."""
    index = Path(git.output("rev-parse", "--git-path", "index", cwd=root))
    if not index.is_absolute():
        index = root / index
    with tempfile.TemporaryDirectory(prefix="clearml-core-capture-") as tmp:
        private = Path(tmp) / "index"
        if index.is_file():
            shutil.copyfile(index, private)
        env = {"GIT_INDEX_FILE": str(private), "GIT_LITERAL_PATHSPECS": "1"}
        git.run("add", "--update", "--", ".", cwd=root, env=env)
        untracked = git.run("ls-files", "-z", "--others", "--exclude-standard", cwd=root).stdout.split("\0")
        small: list[str] = []
        for name in filter(None, untracked):
            try:
                size = os.lstat(root / name).st_size
            except OSError:
                continue
            if size > MAX_UNTRACKED_BYTES:
                warnings.append(
                    f"untracked file {name} ({size // 1024} KiB) is not part of the task's diff; "
                    "commit it, or add it to .gitignore"
                )
            else:
                small.append(name)
        if small:
            git.run(
                "add", "--pathspec-from-file=-", "--pathspec-file-nul",
                cwd=root, env=env, input="\0".join(small).encode("utf-8"),
            )  # fmt: skip
        return git.run(
            "diff", "--cached", "--binary", "--no-color", "--no-ext-diff", "--ignore-submodules=all", base,
            cwd=root, env=env,
        ).stdout  # fmt: skip


def _requirements(captured: CapturedCode, working: Path, config: Config) -> None:
    from clearml_core.environments.requirements import read_requirements_file

    for folder in dict.fromkeys([working, captured.root]):
        candidate = folder / REQUIREMENTS_FILE
        if candidate.is_file():
            captured.requirements = read_requirements_file(candidate)
            captured.requirements_source = str(candidate.relative_to(captured.root))
            return
    if config.get_bool("sdk.development.detect_with_pip_freeze", False):
        packages, skipped = installed_packages()
        captured.requirements = packages
        captured.requirements_source = "pip freeze"
        if skipped:
            captured.warnings.append(
                "left out of the task's requirements, installed from local folders: " + ", ".join(skipped)
            )


def installed_packages() -> tuple[list[str], list[str]]:
    """``pip freeze`` of the running interpreter's environment, without pip: (lines, names of
    packages installed from local folders, which another machine could not install)."""
    from importlib import metadata

    lines: dict[str, str] = {}
    skipped: list[str] = []
    for dist in metadata.distributions():
        name = (dist.metadata["Name"] or "").strip()
        key = name.lower().replace("_", "-")
        if not name or key in lines or key in FREEZE_SKIP or name in skipped:
            continue
        direct = dist.read_text("direct_url.json")
        if direct:
            try:
                info = json.loads(direct)
            except ValueError:
                info = {}
            vcs = info.get("vcs_info") or {}
            if vcs:
                lines[key] = f"{name} @ {vcs.get('vcs', 'git')}+{info.get('url')}@{vcs.get('commit_id', '')}"
                continue
            if str(info.get("url", "")).startswith("file:"):
                skipped.append(name)
                continue
        lines[key] = f"{name}=={dist.version}"
    return [lines[key] for key in sorted(lines)], sorted(skipped)


__all__ = [
    "MAX_UNTRACKED_BYTES",
    "CapturedCode",
    "capture_working_copy",
    "installed_packages",
    "working_copy_root",
]
