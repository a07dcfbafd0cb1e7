"""The flags clearml-agent gives all of daemon, execute and build (its ``WORKER_ARGS``), with its meaning.

* ``--git-user`` / ``--git-pass`` override ``agent.git_user`` / ``agent.git_pass``. They go into
  this process's environment as ``CLEARML_AGENT_GIT_USER`` / ``CLEARML_AGENT_GIT_PASS``, the
  variables clearml-agent documents, so the configuration, a reloaded configuration and the
  background daemon that ``--detached`` starts all see them, and no child's command line carries
  them. A password typed on a command line is visible to the machine's other users, which the
  command says once.
* ``--log-level`` is the level of the agent's own messages; the tasks get it as
  ``CLEARML_LOG_LEVEL``, which ClearML's SDK reads (clearml-agent's "SDK log level").

Flags that change a setting for the whole command (``agent build --install-globally``) do it the
same way, through the setting's variable. The helpers for the variables a daemon hands its tasks
(``CLEARML_WORKER_TAGS``) and for the background daemon's command line live here too.
"""

from __future__ import annotations

import logging
import os
import shlex
from collections.abc import Sequence

from clearml_core.errors import UserError

GIT_USER_VARIABLE = "CLEARML_AGENT_GIT_USER"
GIT_PASS_VARIABLE = "CLEARML_AGENT_GIT_PASS"  # noqa: S105  (the name of a variable, not a secret)
LOG_LEVEL_VARIABLE = "CLEARML_LOG_LEVEL"
SYSTEM_SITE_PACKAGES_VARIABLE = "CLEARML_AGENT__AGENT__PACKAGE_MANAGER__SYSTEM_SITE_PACKAGES"
WORKER_TAGS_VARIABLE = "CLEARML_WORKER_TAGS"
LOG_LEVELS = ("DEBUG", "INFO", "WARN", "WARNING", "ERROR", "CRITICAL")
PASSWORD_WARNING = (
    "--git-pass on a command line is visible to the other users of this machine (ps, /proc); "
    f"set {GIT_PASS_VARIABLE} in the environment instead"
)

log = logging.getLogger("clearml_core.agent")


def apply_git_credentials(user: str | None, password: str | None) -> None:
    """``--git-user`` / ``--git-pass``: set for this process and its children (see the module)."""
    if user is None and password is None:
        return
    if password is not None:
        from clearml_core.config.redact import redactor

        redactor.add(password)
        log.warning(PASSWORD_WARNING)
        os.environ[GIT_PASS_VARIABLE] = password
    if user is not None:
        os.environ[GIT_USER_VARIABLE] = user
    from clearml_core.settings import reset_config

    reset_config()  # loaded before the flags were read: load it again with them


def apply_log_level(value: str | None) -> dict[str, str]:
    """``--log-level``: the agent's messages at that level; returns what the tasks get."""
    if value is None:
        return {}
    level = value.strip().upper()
    if level not in LOG_LEVELS:
        raise UserError(f"--log-level {value!r} is not a level; use one of {', '.join(LOG_LEVELS)}")
    logging.getLogger("clearml_core").setLevel(logging.WARNING if level == "WARN" else level)
    return {LOG_LEVEL_VARIABLE: level}


def apply_system_site_packages() -> None:
    """``agent build --install-globally``: the environment sees the interpreter's packages, as
    ``agent.package_manager.system_site_packages: true`` says (set here through its variable)."""
    os.environ[SYSTEM_SITE_PACKAGES_VARIABLE] = "true"
    from clearml_core.settings import reset_config

    reset_config()


def worker_tags_environ(tags: Sequence[str]) -> dict[str, str]:
    """``--child-report-tags``: what the tasks get, so an agent they start reports the tags too."""
    return {WORKER_TAGS_VARIABLE: " ".join(shlex.quote(tag) for tag in tags)} if tags else {}


def worker_tags_from_environment() -> list[str]:
    """The tags a daemon handed down (``CLEARML_WORKER_TAGS``), as clearml-agent reads them."""
    return shlex.split(os.environ.get(WORKER_TAGS_VARIABLE, ""))


def without_options(args: Sequence[str], names: set[str]) -> list[str]:
    """``args`` without the options ``names`` and their values (``--name value`` or ``--name=value``)."""
    out: list[str] = []
    skip = False
    for arg in args:
        if skip:
            skip = False
            continue
        name = arg.partition("=")[0]
        if name in names:
            skip = "=" not in arg
            continue
        out.append(arg)
    return out
