"""``pip install --find-links dist 'clearml-core[clearml]'`` in a fresh venv gives the ClearML
control plane and nothing of the other plugins; the installed CLI works against a real server,
selected by ClearML's variables alone."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clearml_core.testing.clearml_server import ClearMLServer
from tests.extra_install import install_extra, run


@pytest.mark.slow
def test_the_clearml_extra_installs_the_clearml_control_plane(
    tmp_path: Path, empty_server: ClearMLServer
) -> None:
    installed = install_extra(tmp_path, "clearml", "clearml_core_controlplane_clearml-*.whl")

    plugin = installed.plugin("controlplane_clearml")
    assert plugin["status"] == "loaded" and plugin["distribution"] == "clearml-core-controlplane-clearml", (
        plugin
    )
    with_server = {**installed.environ, **empty_server.environment()}
    assert (
        run(installed.clearml_core, "queue", "create", "installed", env=with_server, timeout=120).returncode
        == 0
    )
    queues = run(installed.clearml_core, "queue", "list", "--json", env=with_server, timeout=120)
    assert queues.returncode == 0, queues.stdout + queues.stderr
    assert [q["name"] for q in json.loads(queues.stdout)] == ["default", "installed"]
    assert {"clearml-core", "clearml-core-controlplane-clearml"} <= installed.packages
    others = {"redis", "boto3", "azure-storage-blob", "google-cloud-storage", "paramiko", "clearml"}
    assert not installed.packages & others
