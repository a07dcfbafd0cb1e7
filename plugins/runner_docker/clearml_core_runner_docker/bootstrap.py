"""The container's first script: environment, setup lines, then the agent inside.

It is written into the mounted run folder (``/clearml-core/run/bootstrap.sh``) and run by the
container's shell, so nothing of it (setup lines may hold anything) shows in ``docker inspect``:

1. the variables of the mounted environment file (``-e`` arguments, the task's agent variables);
2. ``agent.docker_preprocess_bash_script``, then ``agent.docker_init_bash_script`` or the built-in
   init lines: git and python3 when missing, and OpenCV's libraries when
   ``agent.docker_install_opencv_libs`` and they are missing (apt-get, else dnf; a failure is a
   line in the log, not the end of the task);
3. the copies of the mounted ssh folder and git files into place (``agent.disable_ssh_mount``);
4. ``agent.extra_docker_shell_script``, then the task's setup shell script;
5. ``start_agent.py``: clearml-core in its cached environment, which then runs the task.

Each setup line runs whatever the previous ones did, as in clearml-agent.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from clearml_core.config import Config

RUN_DIR = "/clearml-core/run"
READY_MARKER = ".clearml-agent-ready"
"""What ``container/start_agent.py`` writes last into a complete agent environment."""
OPENCV_PACKAGES = ("libsm6", "libxext6", "libxrender-dev", "libglib2.0-0")


def env_file(variables: Mapping[str, str]) -> str:
    """``export NAME='value'`` lines: what the script reads first."""
    lines = []
    for name, value in variables.items():
        if name.isidentifier():
            lines.append(f"export {name}={shlex.quote(str(value))}")
    return "\n".join(lines) + "\n"


def _lines(value: Any) -> list[str]:
    if not value:
        return []
    if isinstance(value, str):
        return [line for line in value.splitlines() if line.strip()]
    return [str(line) for line in value if str(line).strip()]


def default_init_lines(install_opencv: bool) -> list[str]:
    """The built-in init: install only what is missing, so a prepared image starts at once."""
    opencv = " ".join(OPENCV_PACKAGES)
    lines = [
        "export DEBIAN_FRONTEND=noninteractive",
        'CLEARML_APT_INSTALL=""',
        'command -v git >/dev/null 2>&1 || CLEARML_APT_INSTALL="$CLEARML_APT_INSTALL git"',
        'command -v python3 >/dev/null 2>&1 || CLEARML_APT_INSTALL="$CLEARML_APT_INSTALL python3 python3-venv"',
    ]
    if install_opencv:
        lines.append(
            f"if command -v dpkg >/dev/null 2>&1; then for p in {opencv}; do "
            'dpkg -s "$p" >/dev/null 2>&1 || CLEARML_APT_INSTALL="$CLEARML_APT_INSTALL $p"; done; fi'
        )
    lines.append(
        'if [ -n "$CLEARML_APT_INSTALL" ]; then echo "clearml-core: installing$CLEARML_APT_INSTALL in the container"; '
        "if command -v apt-get >/dev/null 2>&1; then "
        "echo 'Binary::apt::APT::Keep-Downloaded-Packages \"true\";' > /etc/apt/apt.conf.d/docker-clean; "
        "(apt-get update -qq && apt-get install -y -qq $CLEARML_APT_INSTALL >/dev/null); "
        "elif command -v dnf >/dev/null 2>&1; then dnf install -y -q $CLEARML_APT_INSTALL; fi "
        '|| echo "clearml-core: could not install$CLEARML_APT_INSTALL in the container"; fi'
    )
    return lines


def script(
    config: Config,
    *,
    setup_script: str = "",
    ssh_ro_folder: str | None = None,
    ssh_folder: str = "~/.ssh",
    git_files_folder: str | None = None,
    install_globally: bool = False,
    start: Sequence[str] = (),
    ready: tuple[str, Sequence[str], Mapping[str, str]] | None = None,
    after: Iterable[str] = (),
) -> str:
    """The whole script (see the module docstring). ``start`` is the command that runs the agent
    (``exec``-ed unless ``after`` has lines to run when it ends, as a build has). ``ready`` is
    (agent environment, its command, variables): when that environment is already complete, it
    runs straight away, without ``start``'s check (what a warm task saves)."""
    body = ["#!/bin/sh", "# written by clearml-core for this container only", f". {RUN_DIR}/env"]
    body += _lines(config.get("agent.docker_preprocess_bash_script"))
    init = config.get("agent.docker_init_bash_script")
    if init:
        body += _lines(init)
    else:
        body += default_init_lines(config.get_bool("agent.docker_install_opencv_libs", True))
    if install_globally:  # PEP 668: the image's Python refuses installs otherwise, as clearml-agent knows
        body.append("rm -f /usr/lib/python3*/EXTERNALLY-MANAGED")
    if ssh_ro_folder:
        target = ssh_folder.replace("~", "$HOME", 1) if ssh_folder.startswith("~") else ssh_folder
        body.append(
            f'mkdir -p "{target}" && cp -Rf {shlex.quote(ssh_ro_folder)}/. "{target}" && chmod -R go-rwx "{target}"'
        )
    if git_files_folder:
        body.append(f'cp -Rf {shlex.quote(git_files_folder)}/. "$HOME"/')
    body += _lines(config.get("agent.extra_docker_shell_script"))
    body += _lines(setup_script)
    if ready is not None and not after:
        venv, agent_command, variables = ready
        python = shlex.quote(f"{venv}/bin/python")
        body.append(f"if [ -e {shlex.quote(f'{venv}/{READY_MARKER}')} ]; then")
        body += [f"  export {name}={shlex.quote(value)}" for name, value in variables.items()]
        body.append('  [ -z "$VIRTUAL_ENV" ] || export CLEARML_CORE_IMAGE_VIRTUAL_ENV="$VIRTUAL_ENV"')
        body.append(
            '  [ -n "$CLEARML_AGENT__AGENT__PYTHON_BINARY" ] || export CLEARML_AGENT__AGENT__PYTHON_BINARY="$(command -v python3)"'
        )
        body.append(f"  exec {python} " + " ".join(shlex.quote(part) for part in agent_command))
        body.append("fi")
    command = " ".join(shlex.quote(part) for part in start)
    after = list(after)
    if after:
        body += [command, "status=$?", *after, "exit $status"]
    else:
        body.append(f"exec {command}")
    return "\n".join(body) + "\n"


def command() -> list[str]:
    """The container's command: the script, with bash when the image has it (setup lines are often
    written for bash), else sh."""
    path = f"{RUN_DIR}/bootstrap.sh"
    return [
        "/bin/sh",
        "-c",
        f"if command -v bash >/dev/null 2>&1; then exec bash {path}; else exec sh {path}; fi",
    ]


__all__ = ["RUN_DIR", "command", "default_init_lines", "env_file", "script"]
