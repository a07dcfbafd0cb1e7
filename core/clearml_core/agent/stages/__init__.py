"""The stages of running one task, one module each, in the order the default pipeline runs them:

* :mod:`~clearml_core.agent.stages.prepare_workdir` — the task's own folder (``code/``,
  ``output/``); a local-folder task's files are copied in.
* :mod:`~clearml_core.agent.stages.code` — a git task's repository checked out into ``code/``
  through the VCS cache: the recorded commit or branch, submodules, the uncommitted diff.
* :mod:`~clearml_core.agent.stages.environment` — the interpreter: ``agent.python_binary`` or the
  agent's own when the task needs no packages, else an environment the package manager builds or
  the environment cache already holds.
* :mod:`~clearml_core.agent.stages.run` — the entry point through the execution environment
  (``venv`` locally, ``docker``), waited for, watching for abort and timeout.
* :mod:`~clearml_core.agent.stages.upload_outputs` — what the task wrote to ``$CLEARML_OUTPUT_DIR``
  sent to its output URI through the storage layer.

The stages share :mod:`clearml_core.agent.context`; :mod:`clearml_core.agent.pipeline` puts them
in order (:func:`~clearml_core.agent.pipeline.default_stages`) and runs them. This package imports
none of them, so naming one loads only what that stage needs.
"""
