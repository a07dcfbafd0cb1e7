"""The poetry package manager of clearml-core's agent.

This module is what the ``pkgmgr_poetry`` entry point names, so it stays cheap: it only describes
the manager; :mod:`clearml_core_pkgmgr_poetry.manager` is imported when a task's environment is built.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from clearml_core.hookspecs import hookimpl
from clearml_core.specs import PackageManagerSpec

__version__ = "0.1.0"


@hookimpl
def clearml_package_managers() -> Iterable[PackageManagerSpec]:
    return [
        PackageManagerSpec(
            name="poetry",
            factory="clearml_core_pkgmgr_poetry.manager:PoetryManager",
            detect_files=("poetry.lock",),
            description="a repository's poetry.lock installed exactly as locked (by uv, or by Poetry itself)",
        ),
    ]


@hookimpl
def clearml_config_defaults() -> Iterable[Path]:
    return [Path(__file__).with_name("defaults.conf")]
