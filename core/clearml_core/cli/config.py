"""``clearml-core config``: show, validate and create clearml.conf."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer

from clearml_core.cli.output import echo, echo_json, warn

app = typer.Typer(help="Show, validate and create clearml.conf.", no_args_is_help=True)


def _format(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else json.dumps(value)


@app.command("show")
def show(
    key: str = typer.Argument(None, help="A dotted key (sdk.aws.s3) to show only that part."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    origin: bool = typer.Option(False, "--origin", help="Say where each value came from."),
) -> None:
    """Print the effective configuration, secrets masked."""
    from clearml_core.config.tree import leaves
    from clearml_core.errors import NotFoundError
    from clearml_core.settings import get_config

    config = get_config()
    tree = config.as_dict(masked=True)
    if key:
        if key not in config:
            raise NotFoundError(f"no configuration key {key!r}; see `clearml-core config show` for all keys")
        tree = config.masked(key)
    rows = (
        [(f"{key}.{k}" if key and k else key or k, v) for k, v in leaves(tree)]
        if isinstance(tree, dict)
        else []
    )
    if not isinstance(tree, dict):
        rows = [(key, tree)]
    if as_json:
        if origin:
            echo_json({k: {"value": v, "origin": config.origin(k)} for k, v in rows})
        else:
            echo_json(tree)
        return
    for dotted, value in rows:
        suffix = f"    # {config.origin(dotted)}" if origin else ""
        echo(f"{dotted}: {_format(value)}{suffix}")


@app.command("validate")
def validate(
    file: Path = typer.Argument(None, help="The file to check (default: the active clearml.conf)."),
) -> None:
    """Check a clearml.conf: syntax, types, unset variables; warn about unknown keys.

    ClearML keys that clearml-core knows but does not use get one note per section.
    """
    from clearml_core.config import config_file_path
    from clearml_core.errors import ConfigError
    from clearml_core.settings import check_file

    if file is None:
        file, _named = config_file_path()
        if not file.exists():
            raise ConfigError(f"{file} does not exist; create it with `clearml-core config init`")
    result = check_file(file)
    for message in result.warnings:
        warn(message)
    for message in result.notes:
        echo(f"note: {message}", err=True)
    warnings = result.warnings
    echo(f"{file}: valid" + (f", {len(warnings)} warning(s)" if warnings else ""))


@app.command("init")
def init(
    file: Path = typer.Option(
        None, "--file", help="Where to write (default: CLEARML_CONFIG_FILE or ~/clearml.conf)."
    ),
    control_plane: str = typer.Option(
        None, "--control-plane", help="sqlite:///PATH or redis://HOST:PORT/DB."
    ),
    git_user: str = typer.Option(None, "--git-user", help="Git user for cloning task repositories."),
    git_pass_stdin: bool = typer.Option(
        False, "--git-pass-stdin", help="Read the git password / token from standard input."
    ),
    extra_index_url: str = typer.Option(None, "--extra-index-url", help="An extra pip index URL."),
    output_uri: str = typer.Option(None, "--output-uri", help="Default output URI for task artifacts."),
    non_interactive: bool = typer.Option(
        False, "--non-interactive", "-y", help="Ask nothing; use flags and defaults."
    ),
) -> None:
    """Create clearml.conf, asking for what the agent needs (like `clearml-agent init`).

    Never overwrites an existing file. The git password comes from a hidden prompt, from
    `--git-pass-stdin`, or from CLEARML_AGENT_GIT_PASS, never from the command line.
    """
    import os

    from clearml_core.cli.output import is_terminal
    from clearml_core.config import config_file_path
    from clearml_core.config.init import ConfigAnswers, write_config
    from clearml_core.errors import UserError

    target = file.expanduser() if file else config_file_path()[0]
    if target.exists():
        raise UserError(f"{target} already exists; edit it, or pass --file to write another one")
    ask = not non_interactive and sys.stdin.isatty() and is_terminal()
    git_pass = (
        sys.stdin.readline().rstrip("\n") if git_pass_stdin else os.environ.get("CLEARML_AGENT_GIT_PASS")
    )

    def prompt(value: str | None, text: str, default: str = "", hide: bool = False) -> str:
        if value is not None or not ask:
            return value if value is not None else default
        return str(typer.prompt(text, default=default, hide_input=hide, show_default=not hide))

    answers = ConfigAnswers(
        control_plane=prompt(control_plane, "Control plane", "sqlite:///~/.clearml-core/state.db"),
        git_user=prompt(git_user, "Git user (empty for none)"),
        git_pass=prompt(git_pass, "Git password or token (empty for none)", hide=True)
        if (git_user or ask)
        else "",
        extra_index_url=prompt(extra_index_url, "Extra pip index URL (empty for none)"),
        output_uri=prompt(output_uri, "Default output URI (empty for none)"),
    )
    write_config(target, answers)
    echo(f"wrote {target}")
