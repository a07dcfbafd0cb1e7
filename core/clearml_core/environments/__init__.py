"""Python environments for tasks: the package-manager protocol, the builder and the environment cache.

* :mod:`~clearml_core.environments.protocol` — :class:`PackageManager`, what pip / uv / conda /
  poetry plugins implement (detect, requirements + settings → fingerprint, create, install, freeze).
* :mod:`~clearml_core.environments.requirements` — a task's requirement lines (record or file).
* :mod:`~clearml_core.environments.cache` — built environments by key, leased while in use.
* :mod:`~clearml_core.environments.builder` — manager → fingerprint → cache hit or build.
* :mod:`~clearml_core.environments.conda_meta` — what a conda environment holds, read from its
  ``conda-meta`` (``task create``'s ``detect_with_conda_freeze``, the conda plugin's freeze).

The agent's ``environment`` stage (:mod:`clearml_core.agent.stages.environment`) calls the
builder; nothing here knows of the agent. See docs/environments.md.
"""

from __future__ import annotations

from clearml_core.environments.process import BuildAborted, BuildFailed, BuildLog, CommandResult
from clearml_core.environments.protocol import (
    NOT_IN_FINGERPRINT,
    BuildContext,
    PackageManager,
    PythonEnv,
    fingerprint_of,
    freeze_environment,
)
from clearml_core.environments.python import PythonInfo, find_python
from clearml_core.environments.requirements import (
    RequirementLine,
    RequirementsError,
    RequirementSet,
    canonical_name,
    content_digest,
    task_requirements,
)

__all__ = [
    "NOT_IN_FINGERPRINT",
    "BuildAborted",
    "BuildContext",
    "BuildFailed",
    "BuildLog",
    "CommandResult",
    "PackageManager",
    "PythonEnv",
    "PythonInfo",
    "RequirementLine",
    "RequirementSet",
    "RequirementsError",
    "canonical_name",
    "content_digest",
    "find_python",
    "fingerprint_of",
    "freeze_environment",
    "task_requirements",
]
