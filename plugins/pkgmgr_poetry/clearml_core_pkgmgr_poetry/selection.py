"""Which packages of a lock one ``poetry install`` installs into a given interpreter.

Poetry's rule for lock format 2.1 (``Transaction.calculate_operations``): a package is installed
when one of the chosen groups needs it and the union of those groups' markers holds for the
interpreter, with ``extra`` standing for the set of chosen extras. The markers are evaluated with
poetry-core, Poetry's own implementation, so a set of extras and Poetry's version comparisons mean
exactly what they mean to Poetry. The interpreter's marker values come from the interpreter
itself (:func:`marker_environment`), which may not be the one running the agent.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from clearml_core.environments import BuildFailed
from clearml_core_pkgmgr_poetry.lockfile import LockedPackage, PoetryLock
from clearml_core_pkgmgr_poetry.project import MAIN_GROUP

_PROBE = r"""
import json, os, platform, sys
def version(info):
    text = f"{info.major}.{info.minor}.{info.micro}"
    if info.releaselevel != "final":
        text += info.releaselevel[0] + str(info.serial)
    return text
print(json.dumps({
    "implementation_name": sys.implementation.name,
    "implementation_version": version(sys.implementation.version),
    "os_name": os.name,
    "platform_machine": platform.machine(),
    "platform_release": platform.release(),
    "platform_system": platform.system(),
    "platform_version": platform.version(),
    "python_full_version": platform.python_version(),
    "platform_python_implementation": platform.python_implementation(),
    "python_version": ".".join(platform.python_version_tuple()[:2]),
    "sys_platform": sys.platform,
}))
"""
PROBE_TIMEOUT_SEC = 60


def marker_environment(python: Path) -> dict[str, Any]:
    """The PEP 508 marker values of the interpreter ``python``."""
    try:
        done = subprocess.run(
            [str(python), "-c", _PROBE],
            capture_output=True,
            text=True,
            timeout=PROBE_TIMEOUT_SEC,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise BuildFailed(f"the new environment's python does not run: {error}") from None
    if done.returncode != 0:
        raise BuildFailed(f"the new environment's python does not run: {done.stderr.strip()[-300:]}")
    values = json.loads(done.stdout)
    assert isinstance(values, dict)
    return values


def check_python(lock: PoetryLock, environment: dict[str, Any]) -> None:
    """Fail when the interpreter is outside the lock's ``python-versions``: the lock was not
    resolved for it, so its packages may not install or may not be the ones Poetry would use."""
    from poetry.core.constraints.version import Version, parse_constraint

    wanted = lock.python_versions.strip() or "*"
    version = str(environment["python_full_version"])
    if parse_constraint(wanted).allows(Version.parse(version)):
        return
    raise BuildFailed(
        f"poetry.lock is for Python {wanted} and the environment's interpreter is Python {version}: "
        "set agent.python_binary to an interpreter the project supports"
    )


def select(
    lock: PoetryLock, groups: Iterable[str], extras: Iterable[str], environment: dict[str, Any]
) -> list[LockedPackage]:
    """The packages of ``lock`` that ``poetry install`` with ``groups`` and ``extras`` installs."""
    from poetry.core.version.markers import parse_marker

    chosen = set(groups)
    values = {**environment, "extra": set(extras)}
    parsed: dict[str, Any] = {}
    picked = []
    for package in lock.packages:
        needed = [marker for group, marker in _by_main_first(package.markers) if group in chosen]
        if not needed:
            continue
        if any(not marker for marker in needed):  # one group needs it unconditionally
            picked.append(package)
            continue
        union = None
        for text in needed:
            if text not in parsed:
                parsed[text] = parse_marker(text)
            union = parsed[text] if union is None else union.union(parsed[text])
        if union is not None and union.validate(values):
            picked.append(package)
    return picked


def _by_main_first(markers: tuple[tuple[str, str], ...]) -> list[tuple[str, str]]:
    """Poetry unions the groups' markers main group first (``group_sort_key``)."""
    return sorted(markers, key=lambda item: (item[0] != MAIN_GROUP, item[0]))
