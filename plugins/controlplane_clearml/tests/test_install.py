"""``pip install --find-links dist 'clearml-core[clearml]'`` in a fresh venv gives the ClearML
control plane and nothing of the other plugins; the installed CLI works against a real server,
selected by ClearML's variables alone."""

from __future__ import annotations

import json
import os
import subprocess
import venv
from pathlib import Path

import pytest

from clearml_core.testing.clearml_server import ClearMLServer

ROOT = Path(__file__).resolve().parents[3]


def _run(*command: str | Path, env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(part) for part in command], capture_output=True, text=True, timeout=timeout, env=env, check=False
    )


@pytest.mark.slow
def test_the_clearml_extra_installs_the_clearml_control_plane(
    tmp_path: Path, empty_server: ClearMLServer
) -> None:
    dist = tmp_path / "dist"
    built = _run("bash", ROOT / "scripts" / "build-dist.sh", dist, env=dict(os.environ))
    assert built.returncode == 0, built.stdout + built.stderr
    assert list(dist.glob("clearml_core_controlplane_clearml-*.whl")), sorted(p.name for p in dist.iterdir())

    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHONPATH", "UV_"))}
    pip = (env_dir / "bin" / "python", "-m", "pip", "--disable-pip-version-check")
    installed = _run(*pip, "install", "--quiet", "--find-links", dist, "clearml-core[clearml]", env=environ)
    assert installed.returncode == 0, installed.stdout + installed.stderr

    clearml = env_dir / "bin" / "clearml-core"
    listed = _run(clearml, "plugins", "list", "--json", env=environ, timeout=120)
    assert listed.returncode == 0, listed.stdout + listed.stderr
    plugins = {p["name"]: p for p in json.loads(listed.stdout)}
    assert plugins["controlplane_clearml"]["status"] == "loaded", plugins["controlplane_clearml"]
    assert plugins["controlplane_clearml"]["distribution"] == "clearml-core-controlplane-clearml"

    with_server = {**environ, **empty_server.environment()}
    assert _run(clearml, "queue", "create", "installed", env=with_server, timeout=120).returncode == 0
    queues = _run(clearml, "queue", "list", "--json", env=with_server, timeout=120)
    assert queues.returncode == 0, queues.stdout + queues.stderr
    assert [q["name"] for q in json.loads(queues.stdout)] == ["default", "installed"]

    packages = _run(*pip, "list", "--format=json", env=environ, timeout=120)
    names = {p["name"].lower() for p in json.loads(packages.stdout)}
    assert {"clearml-core", "clearml-core-controlplane-clearml"} <= names
    assert not names & {"redis", "boto3", "azure-storage-blob", "google-cloud-storage", "paramiko", "clearml"}
