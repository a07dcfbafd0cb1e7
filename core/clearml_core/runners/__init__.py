"""Execution environments: where a task's process runs (``venv`` built in, ``docker`` a plugin)."""

from __future__ import annotations

from clearml_core.runners.base import (
    DEFAULT_ABORT_GRACE_SEC,
    Execution,
    ExecutionEnvironment,
    ExecutionError,
    ImageBuild,
    LaunchSpec,
    LogSink,
    load_environment,
)

__all__ = [
    "DEFAULT_ABORT_GRACE_SEC",
    "Execution",
    "ExecutionEnvironment",
    "ExecutionError",
    "ImageBuild",
    "LaunchSpec",
    "LogSink",
    "load_environment",
]
