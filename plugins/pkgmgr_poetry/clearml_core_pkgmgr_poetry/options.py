"""``agent.package_manager.poetry_install_extra_args``: which groups and extras ``poetry install`` takes.

clearml-agent appends these arguments to ``poetry install``; they are what chooses the lock's
dependency groups (``--with``, ``--without``, ``--only``, ``--all-groups``) and extras (``-E``,
``--extras``, ``--all-extras``). :func:`parse_install_args` reads them as Poetry 2 does, and
:func:`choose` resolves them against the project the way ``poetry install`` does (every
non-optional group by default; an unknown group or extra is an error). Arguments that change only
Poetry's output (``-v``, ``--no-ansi``, ``-n``) are accepted; any other argument is left to Poetry
itself (:attr:`InstallArgs.foreign`).
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from typing import Any

from clearml_core.errors import UserError
from clearml_core_pkgmgr_poetry.lockfile import PoetryLock
from clearml_core_pkgmgr_poetry.project import PoetryProject, canonical

SETTING = "agent.package_manager.poetry_install_extra_args"
_WITH_VALUE = {"--with": "with", "--without": "without", "--only": "only", "--extras": "extras"}
_FLAGS = {"--all-groups", "--all-extras", "--no-directory", "--compile"}
_QUIET = {
    "-n",
    "--no-interaction",
    "--no-root",  # the project itself is never installed (it runs from the checkout)
    "-v",
    "-vv",
    "-vvv",
    "--verbose",
    "-q",
    "--quiet",
    "--ansi",
    "--no-ansi",
    "--no-plugins",
    "--no-cache",
    "--sync",  # a new environment holds nothing else to remove
}


@dataclass(frozen=True)
class InstallArgs:
    """The arguments, sorted by meaning."""

    values: dict[str, tuple[str, ...]] = field(default_factory=dict)
    flags: frozenset[str] = frozenset()
    foreign: tuple[str, ...] = ()
    """Arguments only Poetry itself can honour (``--only-root``, ``--dry-run``, …)."""


@dataclass(frozen=True)
class Choice:
    """The lock's part to install."""

    groups: tuple[str, ...]
    extras: tuple[str, ...]
    skip_directories: bool = False
    compile: bool = False


def as_arguments(value: Any) -> tuple[str, ...]:
    """The setting as a list of arguments (a string is split as a shell would)."""
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(shlex.split(value))
    return tuple(str(item) for item in value)


def parse_install_args(args: tuple[str, ...]) -> InstallArgs:
    values: dict[str, list[str]] = {}
    flags: set[str] = set()
    foreign: list[str] = []
    pending: str | None = None
    for arg in args:
        if pending is not None:
            values.setdefault(pending, []).append(arg)
            pending = None
            continue
        option, equals, value = arg.partition("=")
        if option in _WITH_VALUE:
            if equals:
                values.setdefault(_WITH_VALUE[option], []).append(value)
            else:
                pending = _WITH_VALUE[option]
        elif arg.startswith("-E"):
            if len(arg) > 2:
                values.setdefault("extras", []).append(arg[2:].lstrip("="))
            else:
                pending = "extras"
        elif arg in _FLAGS:
            flags.add(arg)
        elif arg not in _QUIET:
            foreign.append(arg)
    if pending is not None:
        raise UserError(f"{SETTING}: {args[-1]} needs a value")
    return InstallArgs(
        values={key: tuple(items) for key, items in values.items()},
        flags=frozenset(flags),
        foreign=tuple(foreign),
    )


def choose(args: InstallArgs, project: PoetryProject, lock: PoetryLock) -> Choice:
    """The groups and extras ``poetry install <args>`` installs, or the error it would stop with."""
    named = {
        key: {item.strip() for entry in args.values.get(key, ()) for item in entry.split(",") if item.strip()}
        for key in ("with", "without", "only")
    }
    if "--all-groups" in args.flags and (named["with"] or named["without"] or named["only"]):
        raise UserError(f"{SETTING}: --all-groups cannot go with --with, --without or --only (as in Poetry)")
    unknown = sorted(
        f"{group} (via --{key})"
        for key, groups in named.items()
        for group in groups
        if canonical(group) not in project.group_names
    )
    if unknown:
        raise UserError(
            f"{SETTING} names dependency groups the project does not have: {', '.join(unknown)}; "
            f"it has {', '.join(sorted(project.group_names))}"
        )
    wanted = {key: {canonical(group) for group in groups} for key, groups in named.items()}
    if "--all-groups" in args.flags:
        groups = project.group_names
    else:
        groups = wanted["only"] or (project.default_groups | wanted["with"]) - wanted["without"]
    extras_named = [canonical(word) for entry in args.values.get("extras", ()) for word in entry.split()]
    if extras_named and "--all-extras" in args.flags:
        raise UserError(f"{SETTING}: --extras cannot go with --all-extras (as in Poetry)")
    locked_extras = {name for name, _packages in lock.extras}
    extras = set(project.extras) if "--all-extras" in args.flags else set(extras_named)
    missing = sorted(extras - locked_extras)
    if missing:
        raise UserError(
            f"{SETTING} asks for extras poetry.lock does not have: {', '.join(missing)}"
            + (f"; it has {', '.join(sorted(locked_extras))}" if locked_extras else "; it has none")
        )
    return Choice(
        groups=tuple(sorted(groups)),
        extras=tuple(sorted(extras)),
        skip_directories="--no-directory" in args.flags,
        compile="--compile" in args.flags,
    )
