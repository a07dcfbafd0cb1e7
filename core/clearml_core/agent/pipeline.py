"""Running one task: an ordered list of stages sharing a :class:`TaskContext`.

The default pipeline is::

    prepare_workdir  ─▶  code  ─▶  environment  ─▶  run  ─▶  upload_outputs

one module each in :mod:`clearml_core.agent.stages`, which says what each does. A stage is
anything with a ``name`` and ``run(ctx)`` (optionally ``cleanup(ctx)``, called in reverse order
for every stage that started, whatever happened); the context, the :class:`Stage` protocol and the
outcomes (:class:`TaskFailed`, :class:`TaskAborted`) are in :mod:`clearml_core.agent.context` and
importable from here too. Exceptions other than those two are bugs: the task fails with the
exception named and its traceback in the log.

Extending: :class:`Pipeline` has ``replace`` / ``insert_before`` / ``insert_after`` by stage name,
and an execution environment may reshape the list (:meth:`ExecutionEnvironment.stages`).
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Iterable
from dataclasses import dataclass

from clearml_core.agent.context import Stage, TaskAborted, TaskContext, TaskFailed


def default_stages() -> list[Stage]:
    """The agent's stages, in order: prepare_workdir, code, environment, run, upload_outputs."""
    from clearml_core.agent.stages.code import CodeStage
    from clearml_core.agent.stages.environment import PythonEnvironment
    from clearml_core.agent.stages.prepare_workdir import PrepareWorkdir
    from clearml_core.agent.stages.run import RunEntryPoint
    from clearml_core.agent.stages.upload_outputs import UploadOutputs

    return [PrepareWorkdir(), CodeStage(), PythonEnvironment(), RunEntryPoint(), UploadOutputs()]


# -- the pipeline -----------------------------------------------------------------------------


@dataclass
class StageTiming:
    name: str
    seconds: float
    outcome: str  # ok | failed | aborted | error


class Pipeline:
    """An ordered list of stages, run in order until one raises."""

    def __init__(self, stages: Iterable[Stage]) -> None:
        self.stages: list[Stage] = list(stages)
        self.timings: list[StageTiming] = []
        self._check_names()

    def _check_names(self) -> None:
        names = [stage.name for stage in self.stages]
        duplicates = {name for name in names if names.count(name) > 1}
        if duplicates:
            raise ValueError(f"two pipeline stages are called {', '.join(sorted(duplicates))}")

    @property
    def names(self) -> list[str]:
        return [stage.name for stage in self.stages]

    def _index(self, name: str) -> int:
        for index, stage in enumerate(self.stages):
            if stage.name == name:
                return index
        raise KeyError(f"no pipeline stage called {name!r} (stages: {', '.join(self.names)})")

    def replace(self, name: str, *stages: Stage) -> Pipeline:
        index = self._index(name)
        self.stages[index : index + 1] = list(stages)
        self._check_names()
        return self

    def insert_before(self, name: str, *stages: Stage) -> Pipeline:
        index = self._index(name)
        self.stages[index:index] = list(stages)
        self._check_names()
        return self

    def insert_after(self, name: str, *stages: Stage) -> Pipeline:
        index = self._index(name) + 1
        self.stages[index:index] = list(stages)
        self._check_names()
        return self

    def run(self, ctx: TaskContext) -> None:
        """Run every stage; cleanups run in reverse order whatever happened. Exceptions from
        stages propagate (:class:`TaskFailed`, :class:`TaskAborted`, or a bug)."""
        started: list[Stage] = []
        try:
            for stage in self.stages:
                ctx.check()
                started.append(stage)
                begin = time.monotonic()
                outcome = "error"
                try:
                    stage.run(ctx)
                    outcome = "ok"
                except TaskFailed:
                    outcome = "failed"
                    raise
                except TaskAborted:
                    outcome = "aborted"
                    raise
                finally:
                    self.timings.append(StageTiming(stage.name, time.monotonic() - begin, outcome))
        finally:
            for stage in reversed(started):
                cleanup = getattr(stage, "cleanup", None)
                if cleanup is None:
                    continue
                try:
                    cleanup(ctx)
                except Exception:
                    ctx.log(f"cleanup of stage {stage.name} failed:\n{traceback.format_exc().rstrip()}")


__all__ = [
    "Pipeline",
    "Stage",
    "TaskAborted",
    "TaskContext",
    "TaskFailed",
    "default_stages",
]
