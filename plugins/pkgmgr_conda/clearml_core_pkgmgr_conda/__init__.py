"""The conda package manager of clearml-core's agent (``agent.package_manager.type: conda``).

This module is what the ``pkgmgr_conda`` entry point names, so it stays cheap: it only describes
the manager; :mod:`clearml_core_pkgmgr_conda.manager` (and rattler) are imported when a task's
environment is built.
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
            name="conda",
            factory="clearml_core_pkgmgr_conda.manager:CondaManager",
            detect_files=("environment.yml", "environment.yaml"),
            description="conda environments solved and installed with rattler (or a conda/mamba/micromamba binary)",
        )
    ]


@hookimpl
def clearml_config_defaults() -> Iterable[Path]:
    return [Path(__file__).with_name("defaults.conf")]
