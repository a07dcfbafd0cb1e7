"""Which execution environment runs the tasks: ``--execution-env``, the docker flags, ``agent.execution_env``.

``venv`` (a local process) is built in; plugins add others through the
``clearml_execution_environments`` hook. clearml-agent's docker-only flags (``--docker``,
``--podman``, ``--force-current-version``, and for ``agent build`` ``--force-docker`` and
``--entry-point``) ask for the environment called ``docker``, which a plugin provides (clearml-core has none of
its own yet); without one they fail with one line that says so (see
:func:`clearml_core.runners.base.load_environment`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from clearml_core.errors import UserError

if TYPE_CHECKING:
    from clearml_core.config import Config
    from clearml_core.runners.base import ExecutionEnvironment

DEFAULT_ENVIRONMENT = "venv"
DOCKER_ENVIRONMENT = "docker"
SETTING = "agent.execution_env"


def choose_environment(config: Config, requested: str | None, docker_flag: str | None = None) -> str:
    """The name of the environment to run tasks in.

    ``requested`` is ``--execution-env``; ``docker_flag`` the first docker-only flag given (its
    name), which means ``docker``. Without either, ``agent.execution_env``; "" there is ``venv``.
    """
    name = (requested or "").strip()
    if docker_flag is not None:
        if name and name != DOCKER_ENVIRONMENT:
            raise UserError(
                f"{docker_flag} runs tasks in the docker execution environment; "
                f"it cannot go with --execution-env {name}"
            )
        return DOCKER_ENVIRONMENT
    if requested is not None and not name:
        raise UserError(
            "--execution-env needs a name (venv, or one a plugin provides: clearml-core plugins list)"
        )
    return name or (config.get_str(SETTING, "") or "").strip() or DEFAULT_ENVIRONMENT


def open_environment(
    config: Config, requested: str | None, docker_flag: str | None = None
) -> tuple[str, ExecutionEnvironment]:
    """:func:`choose_environment`'s name and the environment, loaded: a missing plugin or an
    unknown name is a one-line :class:`~clearml_core.errors.UserError` before any task starts."""
    from clearml_core.runners.base import load_environment

    name = choose_environment(config, requested, docker_flag)
    asked_by = docker_flag or ("--execution-env" if requested else SETTING)
    return name, load_environment(name, config, asked_by=asked_by)


def first_flag(flags: dict[str, object]) -> str | None:
    """The first of ``flags`` (name → value as parsed) that was given: not None, not False."""
    return next((name for name, value in flags.items() if value is not None and value is not False), None)
