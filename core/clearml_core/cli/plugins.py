"""``clearml-core plugins``: what is installed and whether it loads."""

from __future__ import annotations

import typer

from clearml_core.cli.output import echo_json, table

app = typer.Typer(help="Installed plugins.", no_args_is_help=True)


@app.command("list")
def list_plugins(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """List plugins: name, distribution, version, what each provides, status.

    A plugin that failed to load, or that claims a name another plugin claims too, is listed with
    its error (and warned about on stderr); the listing itself still succeeds.
    """
    from clearml_core.plugins import get_registry

    registry = get_registry()
    plugins = registry.plugins()
    if as_json:
        echo_json([plugin.to_json() for plugin in plugins])
    else:
        rows = [
            (p.name, p.distribution, p.version, p.status, ", ".join(p.provides) or p.error or "")
            for p in plugins
        ]
        table(["NAME", "DISTRIBUTION", "VERSION", "STATUS", "PROVIDES"], rows)
