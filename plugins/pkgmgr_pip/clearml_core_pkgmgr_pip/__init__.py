"""pip and uv package managers for clearml-core's agent.

This module is what the ``pkgmgr_pip`` entry point names, so it stays cheap: it only describes the
two managers; :mod:`clearml_core_pkgmgr_pip.managers` is imported when a task's environment is built.
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
            name="pip",
            factory="clearml_core_pkgmgr_pip.managers:PipManager",
            description="pip semantics (pip.conf, best version across indexes); installed by uv when available",
        ),
        PackageManagerSpec(
            name="uv",
            factory="clearml_core_pkgmgr_pip.managers:UvManager",
            detect_files=("uv.lock",),
            description="uv semantics; uv sync --locked for repositories with a uv.lock",
        ),
    ]


@hookimpl
def clearml_config_defaults() -> Iterable[Path]:
    return [Path(__file__).with_name("defaults.conf")]
