"""The lock as requirement lines for ``uv pip install --no-deps``: the same packages, the same files.

Each selected package becomes one pinned line: ``name==version`` with every file hash the lock
allows (uv then refuses any other file, as ``--require-hashes`` would), ``name @ url`` with its hash
for a URL or local archive, ``name @ git+url@commit`` for a git dependency (the commit the lock
resolved), ``name @ file:///…`` for a local folder, ``-e /…`` when the lock installs it in develop
mode. Nothing is resolved: ``--no-deps`` installs exactly these, as ``poetry install`` installs
exactly the lock's operations.

:func:`blocker` says why a lock cannot be reproduced this way (then Poetry itself installs it).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import quote

from clearml_core_pkgmgr_poetry.lockfile import LockedPackage, PoetryLock

_SCP_LIKE = re.compile(r"^(?P<user>[\w.-]+@)?(?P<host>[\w.-]+):(?!//)(?P<path>.+)$")
_URL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")
_KNOWN_SOURCES = {"", "legacy", "git", "directory", "file", "url"}


def blocker(lock: PoetryLock) -> str:
    """Why uv cannot install exactly what ``poetry install`` would from ``lock`` ("" when it can)."""
    if not lock.has_groups_and_markers:
        written = ".".join(map(str, lock.format))
        return (
            f"poetry.lock is lock format {written} (Poetry before 2.0): choosing its packages needs "
            "Poetry's solver; `poetry lock` with Poetry 2 writes format 2.1"
        )
    for package in lock.packages:
        kind = package.source.type
        if kind not in _KNOWN_SOURCES:
            return f"{package.name} comes from a {kind!r} source"
        if kind in ("", "legacy", "url", "file") and not package.hashes:
            return f"the lock has no file hashes for {package.name} {package.version}"
        if kind == "git" and (not package.source.resolved_reference or git_url(package.source.url) is None):
            return f"the git source of {package.name} ({package.source.url}) is not one uv can read"
    return ""


def git_url(url: str) -> str | None:
    """A lock's git URL as a PEP 508 VCS URL (``git+…``), or None when it is not one.

    Poetry writes a local repository as ``file://None/path`` and an ssh one as ``git@host:path``.
    """
    if url.startswith("file://None/"):
        return "git+file:///" + url.removeprefix("file://None/")
    if _URL.match(url):
        return url if url.startswith("git+") else f"git+{url}"
    match = _SCP_LIKE.match(url)
    if match:
        return f"git+ssh://{match.group('user') or ''}{match.group('host')}/{match.group('path').lstrip('/')}"
    return None


def local_path(package: LockedPackage, project_dir: Path) -> Path:
    """The folder or archive of a ``directory`` / ``file`` package (relative paths are the project's)."""
    path = Path(os.path.expanduser(package.source.url))
    return Path(os.path.normpath(path if path.is_absolute() else project_dir / path))


def requirement_line(package: LockedPackage, project_dir: Path) -> str:
    """One line of the requirements file uv installs (see the module documentation)."""
    hashes = "".join(f" --hash={digest}" for digest in package.hashes)
    kind = package.source.type
    if kind in ("", "legacy"):
        return f"{package.name}=={package.version}{hashes}"
    if kind == "url":
        return f"{package.name} @ {package.source.url}{hashes}"
    if kind == "git":
        url = git_url(package.source.url)
        assert url is not None, "blocker() rejects the lock first"
        line = f"{package.name} @ {url}@{package.source.resolved_reference}"
        if package.source.subdirectory:
            line += f"#subdirectory={quote(package.source.subdirectory)}"
        return line
    path = local_path(package, project_dir)
    if kind == "directory" and package.develop:
        return f"-e {path}"
    return f"{package.name} @ {path.as_uri()}{hashes if kind == 'file' else ''}"


def index_urls(packages: list[LockedPackage]) -> tuple[list[str], bool]:
    """The package indexes of ``packages`` (legacy sources, in the lock's order) and whether one
    comes from PyPI, Poetry's implicit source."""
    urls: list[str] = []
    from_pypi = False
    for package in packages:
        if package.source.type == "":
            from_pypi = True
        elif package.source.type == "legacy" and package.source.url not in urls:
            urls.append(package.source.url)
    return urls, from_pypi
