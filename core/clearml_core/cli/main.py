"""The ``clearml-core`` application: global options, error handling, command groups.

Command modules import nothing heavy at module level, so ``--help`` stays fast (a test and
``benchmarks/startup.py`` watch this).
"""

from __future__ import annotations

import logging
import os
import sys
import traceback

import typer

from clearml_core import __version__
from clearml_core.cli import agent as agent_commands
from clearml_core.cli import config as config_commands
from clearml_core.cli import controlplane as controlplane_commands
from clearml_core.cli import doctor as doctor_commands
from clearml_core.cli import plugins as plugins_commands
from clearml_core.cli import queue as queue_commands
from clearml_core.cli import server as server_commands
from clearml_core.cli import storage as storage_commands
from clearml_core.cli import task as task_commands
from clearml_core.cli import worker as worker_commands
from clearml_core.cli.output import echo
from clearml_core.errors import UserError

DEBUG_VARIABLE = "CLEARML_CORE_DEBUG"

app = typer.Typer(
    name="clearml-core",
    help="Move ML artifacts between any storage and run experiments reproducibly.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    # Plain click help: typer's rich rendering imports rich.markdown and friends, which costs more
    # than typer itself; sub-command groups inherit this (benchmarks/startup.py).
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(plugins_commands.app, name="plugins")
app.add_typer(config_commands.app, name="config")
app.command("doctor")(doctor_commands.doctor)
app.add_typer(task_commands.app, name="task")
app.add_typer(queue_commands.app, name="queue")
app.add_typer(worker_commands.app, name="worker")
app.add_typer(controlplane_commands.app, name="controlplane")
app.add_typer(storage_commands.app, name="storage")
app.add_typer(agent_commands.app, name="agent")
app.add_typer(server_commands.app, name="server")


def _debug_requested(argv: list[str]) -> bool:
    return "--debug" in argv or os.environ.get(DEBUG_VARIABLE, "") not in ("", "0", "false")


def _version(value: bool) -> None:
    if value:
        echo(f"clearml-core {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks and debug logs."),
    config_file: str | None = typer.Option(
        None,
        "--config-file",
        metavar="PATH",
        help="Use this clearml.conf (as CLEARML_CONFIG_FILE does, for this command and what it starts).",
    ),
) -> None:
    """clearml-core: ClearML-compatible storage, credentials and agent."""
    _setup_logging(debug)
    if config_file is not None:
        _use_config_file(config_file)


def _use_config_file(value: str) -> None:
    """``--config-file``: through ``CLEARML_CONFIG_FILE``, so every process the command starts (a
    detached daemon, the tasks) reads the same file, as clearml-agent's ``--config-file`` does."""
    from pathlib import Path

    from clearml_core.config.environment import CONFIG_FILE_VARIABLE
    from clearml_core.settings import reset_config

    path = Path(os.path.expandvars(value)).expanduser().absolute()
    if not path.is_file():
        raise UserError(f"--config-file {value}: there is no file {path}; give the path of a clearml.conf")
    os.environ[CONFIG_FILE_VARIABLE] = str(path)
    reset_config()


def _setup_logging(debug: bool) -> None:
    # Here rather than at import: root --help and --version print no secret and need not load the
    # configuration package; every command runs this callback before it can print one.
    from clearml_core.config.redact import RedactingFilter, redactor

    redactor.add_environment()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname_lower)s: %(message)s"))
    handler.addFilter(RedactingFilter())
    handler.addFilter(_LowerLevelName())
    root = logging.getLogger("clearml_core")
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if debug else logging.INFO)
    root.propagate = False


class _LowerLevelName(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.levelname_lower = record.levelname.lower()
        return True


def execute(argv: list[str]) -> int:
    """Run the CLI with ``argv`` and return its exit code: user errors 2 with one line, bugs 1."""
    debug = _debug_requested(argv)
    try:
        app(args=argv, prog_name="clearml-core", standalone_mode=True)
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    except UserError as error:
        if debug:
            echo(traceback.format_exc(), err=True)
        echo(f"error: {error}", err=True)
        return error.exit_code
    except KeyboardInterrupt:
        echo("interrupted", err=True)
        return 130
    except Exception as error:
        if debug:
            echo(traceback.format_exc(), err=True)
        else:
            echo(f"error: {type(error).__name__}: {error} (run with --debug for the traceback)", err=True)
        return 1
    return 0


def run() -> None:
    """Console-script entry point."""
    sys.exit(execute(sys.argv[1:]))


if __name__ == "__main__":
    run()
