"""A Poetry project's ``pyproject.toml``: its dependency groups, its extras, and whether its lock is current.

Poetry writes into ``poetry.lock`` a ``content-hash`` of the parts of ``pyproject.toml`` that
decide the lock (dependencies, groups, sources, extras, ``requires-python``). ``poetry install``
refuses a lock whose hash differs ("pyproject.toml changed significantly since poetry.lock was last
generated") instead of locking again; :func:`lock_is_current` is the same check, computed the way
Poetry computes it (:func:`content_hash`), so a stale lock fails before anything is installed.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clearml_core.environments import RequirementsError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

MAIN_GROUP = "main"
_LEGACY_KEYS = ("dependencies", "source", "extras", "dev-dependencies")
_RELEVANT_KEYS = (*_LEGACY_KEYS, "group")
_RELEVANT_PROJECT_KEYS = ("requires-python", "dependencies", "optional-dependencies")
_GROUPS_IN_HASH_SINCE = (2, 3)
"""Poetry versions before 2.3 left ``[dependency-groups]`` out of the content hash."""


class LockError(RequirementsError):
    """The project's ``pyproject.toml`` or ``poetry.lock`` cannot be used as it is."""


def canonical(name: str) -> str:
    """A project, group or extra name as Poetry compares them (PEP 503): ``Dev_Tools`` → ``dev-tools``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def read_toml(path: Path, what: str) -> dict[str, Any]:
    """``path`` parsed; a :class:`LockError` naming ``what`` when it is missing or not TOML."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise LockError(f"{what} {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as error:
        raise LockError(f"cannot read {what} {path}: {error}") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise LockError(f"{what} {path} is not valid TOML ({error}); fix it and commit it") from None


@dataclass(frozen=True)
class PoetryProject:
    """What of ``pyproject.toml`` decides which part of the lock ``poetry install`` installs."""

    groups: tuple[tuple[str, bool], ...]
    """Every dependency group (canonical name) and whether it is optional; ``main`` first."""
    extras: tuple[str, ...]
    """The project's extras (canonical names)."""
    data: dict[str, Any]

    @property
    def group_names(self) -> set[str]:
        return {name for name, _optional in self.groups}

    @property
    def default_groups(self) -> set[str]:
        """What ``poetry install`` installs without options: every non-optional group."""
        return {name for name, optional in self.groups if not optional}


def read_project(path: Path) -> PoetryProject:
    """The project described by the ``pyproject.toml`` at ``path``."""
    data = read_toml(path, "pyproject.toml")
    poetry = _table(data.get("tool", {})).get("poetry", {})
    poetry = _table(poetry)
    groups: dict[str, bool] = {MAIN_GROUP: False}
    if poetry.get("dev-dependencies"):
        groups["dev"] = False  # Poetry 1.0's spelling of the dev group
    for name in _table(data.get("dependency-groups", {})):
        groups.setdefault(canonical(str(name)), False)
    for name, table in _table(poetry.get("group", {})).items():
        groups[canonical(str(name))] = bool(_table(table).get("optional", False))
    extras = {
        canonical(str(name)) for name in _table(_table(data.get("project", {})).get("optional-dependencies"))
    }
    extras |= {canonical(str(name)) for name in _table(poetry.get("extras"))}
    ordered = sorted(groups.items(), key=lambda item: (item[0] != MAIN_GROUP, item[0]))
    return PoetryProject(groups=tuple(ordered), extras=tuple(sorted(extras)), data=data)


def _table(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def content_hash(data: dict[str, Any], *, with_dependency_groups: bool = True) -> str:
    """The ``content-hash`` Poetry would write into ``poetry.lock`` for this ``pyproject.toml``."""
    project = _table(data.get("project"))
    groups = _table(data.get("dependency-groups")) if with_dependency_groups else {}
    tool_poetry = _table(_table(data.get("tool")).get("poetry"))
    relevant_project = {key: project[key] for key in _RELEVANT_PROJECT_KEYS if project.get(key) is not None}
    relevant_poetry: dict[str, Any] = {}
    for key in _RELEVANT_KEYS:
        value = tool_poetry.get(key)
        if value is None and (key not in _LEGACY_KEYS or relevant_project or groups):
            continue
        relevant_poetry[key] = value
    relevant: dict[str, Any] = {}
    if relevant_project:
        relevant["project"] = relevant_project
    if groups:
        relevant["dependency-groups"] = groups
    if relevant:
        relevant["tool"] = {"poetry": relevant_poetry}
    else:
        relevant = relevant_poetry  # what Poetry before 2.0 hashed
    return hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()


def lock_is_current(project: PoetryProject, locked_hash: str, generator: tuple[int, ...] | None) -> bool:
    """Whether a lock with ``content-hash = locked_hash``, written by Poetry ``generator``, is
    still the lock of ``project`` (Poetry's own test, :meth:`Locker.is_fresh`)."""
    if not locked_hash:
        return False
    if content_hash(project.data) == locked_hash:
        return True
    if generator is not None and generator < _GROUPS_IN_HASH_SINCE:
        return content_hash(project.data, with_dependency_groups=False) == locked_hash
    return False
