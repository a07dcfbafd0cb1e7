"""The ``clearml-core`` command line (typer); one module per command group."""
