"""``clearml-core doctor``: is this installation ready to work, and what is missing?"""

from __future__ import annotations

import typer

from clearml_core.cli.output import echo_json, table


def doctor(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Check plugins, configuration, storage backends, tools and free disk space."""
    from clearml_core.diagnostics import run_checks

    checks = run_checks()
    if as_json:
        echo_json([check.to_json() for check in checks])
    else:
        table(["STATUS", "CHECK", "DETAIL"], [(c.status, c.name, c.detail) for c in checks])
    if any(check.status == "error" for check in checks):
        raise typer.Exit(1)
