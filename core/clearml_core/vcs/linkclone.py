"""A working copy of a cached mirror, laid out in-process: ``git clone --local --no-checkout``
without its two processes.

``git clone --local`` hard-links the objects and copies the refs, but starts ``git-upload-pack``
just to list those refs: about 20 ms of a warm git task's start, for a repository whose files are
right here. This writes what that clone writes, from the same files:

* ``objects/`` hard-linked (copied where a link is refused, as git does);
* the mirror's branches as ``refs/remotes/origin/*`` with ``origin/HEAD`` at its default branch,
  its tags as tags, its default branch as the local branch ``HEAD`` names;
* ``config``: a non-bare repository whose ``origin`` is the task's public URL, fetching
  ``+refs/heads/*:refs/remotes/origin/*``, the default branch tracking its origin branch.

Only the plain repository format git itself uses for such mirrors is reproduced; anything else
(a newer format or an extension, reftable, alternates, a shallow mirror) makes :func:`link_clone`
return ``False`` before it writes anything, and the caller runs git.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

_SHA = re.compile(r"^[0-9a-f]{40}$")
_REF_TARGET = re.compile(r"^ref: (refs/heads/\S+)$")
_FORMAT = re.compile(r"^\s*repositoryformatversion\s*=\s*(\d+)\s*$", re.MULTILINE)


def link_clone(mirror: Path, dest: Path, origin_url: str) -> bool:
    """Make ``dest`` (which must not exist) a clone of the bare repository ``mirror`` with
    ``origin_url`` as ``origin``; ``False`` where the mirror needs git to do it."""
    if not _plain(mirror) or any(c in origin_url for c in "\n\r\0"):
        return False
    refs = _read_refs(mirror)
    if refs is None:
        return False
    default = _default_branch(mirror)
    heads = {name[len("refs/heads/") :]: sha for name, sha in refs.items() if name.startswith("refs/heads/")}
    cloned = {f"refs/remotes/origin/{branch}": sha for branch, sha in heads.items()}
    cloned.update((name, sha) for name, sha in refs.items() if name.startswith("refs/tags/"))
    if default in heads:
        cloned[f"refs/heads/{default}"] = heads[default]
    git_dir = dest / ".git"
    git_dir.mkdir(parents=True)
    _link_tree(mirror / "objects", git_dir / "objects")
    # every ref packed (each folder costs a syscall or two more than a line); only the symbolic
    # origin/HEAD must be a file
    lines = "".join(f"{cloned[name]} {name}\n" for name in sorted(cloned))
    (git_dir / "packed-refs").write_text(f"# pack-refs with: sorted \n{lines}", encoding="utf-8")
    if default in heads:
        (git_dir / "refs" / "remotes" / "origin").mkdir(parents=True)
        (git_dir / "refs" / "remotes" / "origin" / "HEAD").write_text(
            f"ref: refs/remotes/origin/{default}\n", encoding="utf-8"
        )
    else:
        (git_dir / "refs").mkdir()
    (git_dir / "HEAD").write_text(f"ref: refs/heads/{default or 'main'}\n", encoding="utf-8")
    (git_dir / "config").write_text(
        _config(origin_url, default if default in heads else ""), encoding="utf-8"
    )
    return True


def branch_commit(repo: Path, ref: str) -> str | None:
    """The commit of the branch ``ref`` (``refs/heads/...``) of ``repo``, read from its files:
    ``""`` when there is no such branch, ``None`` where git must answer (git keeps branches on
    commits, so no object needs reading)."""
    if not ref.startswith("refs/heads/") or ".." in ref or not _plain(repo):
        return None
    loose = _loose_ref(repo / ref)
    if loose != "":
        return loose  # the commit, or None for a symbolic ref or an unreadable file
    packed = _packed_refs(repo)
    return None if packed is None else packed.get(ref, "")


def config_quote(value: str) -> str:
    """``value`` as a double-quoted git config value."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _config(origin_url: str, branch: str) -> str:
    return (
        "[core]\n"
        "\trepositoryformatversion = 0\n"
        "\tfilemode = true\n"
        "\tbare = false\n"
        "\tlogallrefupdates = true\n"
        '[remote "origin"]\n'
        f"\turl = {config_quote(origin_url)}\n"
        "\tfetch = +refs/heads/*:refs/remotes/origin/*\n"
    ) + (_tracking(branch) if branch else "")


def _tracking(branch: str) -> str:
    return f"[branch {config_quote(branch)}]\n\tremote = origin\n\tmerge = refs/heads/{branch}\n"


def _plain(mirror: Path) -> bool:
    """The mirror is version-0 format with loose and packed refs only, all objects its own."""
    try:
        config = (mirror / "config").read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return False
    versions = _FORMAT.findall(config)
    if versions != ["0"] or "[extensions" in config.lower():
        return False
    return not any(
        (mirror / name).exists() for name in ("reftable", "shallow", "objects/info/alternates", "commondir")
    )


def _read_refs(mirror: Path) -> dict[str, str] | None:
    """Branches and tags of ``mirror``: ``packed-refs`` overlaid with loose refs (loose ones
    win, as in git); ``None`` for anything unexpected."""
    refs = _packed_refs(mirror)
    if refs is None:
        return None
    for kind in ("heads", "tags"):
        top = mirror / "refs" / kind
        for folder, _dirs, files in os.walk(top):
            for file in files:
                if file.endswith(".lock"):
                    continue  # left by a killed fetch; git ignores it too
                path = Path(folder, file)
                sha = _loose_ref(path)
                if not sha:
                    return None  # a symbolic ref, an unreadable file: let git make sense of it
                refs[path.relative_to(mirror).as_posix()] = sha
    return refs


def _packed_refs(repo: Path) -> dict[str, str] | None:
    """The refs in ``repo``'s ``packed-refs`` (none when it has no such file); ``None`` for
    anything unexpected in it."""
    try:
        packed = (repo / "packed-refs").read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError):
        return None
    refs: dict[str, str] = {}
    for line in packed.splitlines():
        if not line or line.startswith(("#", "^")):
            continue
        sha, _, name = line.partition(" ")
        if not _SHA.match(sha) or not name.startswith("refs/"):
            return None
        refs[name] = sha
    return refs


def _loose_ref(path: Path) -> str | None:
    """The commit a loose ref file names; ``""`` when there is no such file, ``None`` when it is
    not a plain hash (a symbolic ref) or cannot be read."""
    try:
        text = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return ""
    except (OSError, UnicodeDecodeError):
        return None
    return text if _SHA.match(text) else None


def _default_branch(mirror: Path) -> str:
    try:
        head = (mirror / "HEAD").read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return ""
    match = _REF_TARGET.match(head)
    return match.group(1)[len("refs/heads/") :] if match else ""


def _link_tree(source: Path, target: Path) -> None:
    """Hard-link every file of ``source`` into ``target``; copy the ones a link is refused for."""
    for folder, _dirs, files in os.walk(source):
        into = target / Path(folder).relative_to(source)
        into.mkdir(parents=True, exist_ok=True)
        for file in files:
            try:
                os.link(Path(folder, file), into / file)
            except OSError:
                shutil.copy2(Path(folder, file), into / file)


__all__ = ["branch_commit", "config_quote", "link_clone"]
