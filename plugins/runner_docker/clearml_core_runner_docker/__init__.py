"""The ``docker`` execution environment of clearml-core's agent: each task in its own container.

This module is what the ``runner_docker`` entry point names, so it stays cheap: it only describes
the environment and its defaults; the Docker SDK is imported when a task first needs the engine.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from clearml_core.hookspecs import hookimpl
from clearml_core.specs import ExecutionEnvSpec

__version__ = "0.1.0"


@hookimpl
def clearml_execution_environments() -> Iterable[ExecutionEnvSpec]:
    return [
        ExecutionEnvSpec(
            name="docker",
            factory="clearml_core_runner_docker.environment:DockerEnvironment",
            description="each task in its own container, through the Docker SDK (podman's socket with --podman)",
        )
    ]


@hookimpl
def clearml_config_defaults() -> Iterable[Path]:
    return [Path(__file__).with_name("defaults.conf")]
