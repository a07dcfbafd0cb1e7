"""What of a ``uv.lock`` decides its environment besides the lock's own text: local folders.

``uv sync --no-install-workspace`` installs every locked package but the workspace's own members
(the project runs from the checkout). A package locked from a folder (``source = { directory =
"libs/x" }``) is built from that folder as it is in the task's checkout, so the folder's content
is part of the environment's cache key (:func:`~clearml_core.environments.content_digest`: a new
checkout of the same commit gives the same key). One locked in editable mode (``{ editable = …
}``, not a member) would point into a checkout that is deleted after the task, so such an
environment is built for its task alone.

A lock is parsed once per content: a daemon reads the same one for every task of a repository.
"""

from __future__ import annotations

import hashlib
import os
import sys
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clearml_core.environments import RequirementsError, canonical_name, content_digest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

_MEMO_SIZE = 16
_memo: OrderedDict[str, tuple[tuple[str, str], ...]] = OrderedDict()
_memo_lock = threading.Lock()


@dataclass(frozen=True)
class LocalSources:
    """The local folders and files a lock installs, as the cache key needs them."""

    digests: tuple[tuple[str, str], ...] = ()
    """(path as the lock writes it, digest of its content)."""
    uncacheable_reason: str = ""


def local_sources(project_dir: Path, lock_text: bytes) -> LocalSources:
    """The local sources of the ``uv.lock`` of ``project_dir`` (its bytes: ``lock_text``)."""
    sources = _sources(lock_text)
    digests: list[tuple[str, str]] = []
    reason = ""
    for kind, path in sources:
        if kind == "editable":
            reason = reason or (
                f"uv.lock installs {path} in editable mode, pointing into a folder that may change or go away"
            )
            continue
        target = project_dir / path
        digest = _digest(target)
        if digest is None:
            reason = reason or f"the local folder {path} of uv.lock is too large to fingerprint"
            digest = "too-large"
        digests.append((path, digest))
    return LocalSources(tuple(digests), reason)


def _digest(target: Path) -> str | None:
    if target.is_dir():
        return content_digest(target)
    try:
        return hashlib.sha256(target.read_bytes()).hexdigest()[:32]
    except OSError:
        return "missing"


def _sources(lock_text: bytes) -> tuple[tuple[str, str], ...]:
    """(kind, path) of the locked packages ``uv sync --no-install-workspace`` installs from local paths."""
    key = hashlib.sha256(lock_text).hexdigest()
    with _memo_lock:
        if key in _memo:
            _memo.move_to_end(key)
            return _memo[key]
    try:
        parsed = tomllib.loads(lock_text.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise RequirementsError(
            f"uv.lock cannot be read ({error}); run `uv lock` in the project and commit the result"
        ) from None
    found = tuple(sorted(_local(parsed)))
    with _memo_lock:
        _memo[key] = found
        while len(_memo) > _MEMO_SIZE:
            _memo.popitem(last=False)
    return found


def _local(parsed: dict[str, Any]) -> list[tuple[str, str]]:
    manifest = parsed.get("manifest")
    members = (
        {canonical_name(str(m)) for m in manifest.get("members", ())} if isinstance(manifest, dict) else set()
    )
    found = []
    for package in parsed.get("package", ()):
        if not isinstance(package, dict) or not isinstance(package.get("source"), dict):
            continue
        source = package["source"]
        name = canonical_name(str(package.get("name", "")))
        for kind in ("editable", "directory", "path"):
            path = source.get(kind)
            if path is None:
                continue
            if name in members or os.path.normpath(str(path)) == ".":
                break  # a workspace member or the project itself: not installed
            found.append((kind, str(path)))
    return found
