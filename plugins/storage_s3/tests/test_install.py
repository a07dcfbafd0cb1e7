"""``pip install --find-links dist 'clearml-core[s3]'`` in a fresh venv gives exactly the S3 backend."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]

_PROBE = """
import json
from clearml_core.errors import UserError
from clearml_core.storage.backends import backend_for
found = {}
for scheme in ("s3", "azure", "gs", "sftp"):
    try:
        backend = backend_for(scheme)
        found[scheme] = backend.driver_class.__module__
    except UserError as error:
        found[scheme] = "error: " + str(error)
print(json.dumps(found))
"""


@pytest.mark.slow
def test_the_s3_extra_installs_exactly_the_s3_backend(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    built = subprocess.run(
        ["bash", str(ROOT / "scripts" / "build-dist.sh"), str(dist)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    assert list(dist.glob("clearml_core_storage_s3-*.whl")), sorted(p.name for p in dist.iterdir())

    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHONPATH", "UV_"))}
    installed = subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--find-links",
            str(dist),
            "clearml-core[s3]",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env=environ,
        check=False,
    )
    assert installed.returncode == 0, installed.stdout + installed.stderr

    listed = subprocess.run(
        [str(env_dir / "bin" / "clearml-core"), "plugins", "list", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        env=environ,
        check=False,
    )
    assert listed.returncode == 0, listed.stdout + listed.stderr
    plugins = {p["name"]: p for p in json.loads(listed.stdout)}
    assert plugins["storage_s3"]["status"] == "loaded", plugins["storage_s3"]
    assert plugins["storage_s3"]["distribution"] == "clearml-core-storage-s3"
    backends = sorted(
        item.split()[2]
        for plugin in plugins.values()
        for item in plugin["provides"]
        if item.startswith("storage backend ")
    )
    assert backends == ["file", "http", "s3"], backends

    probe = subprocess.run(
        [str(python), "-c", _PROBE], capture_output=True, text=True, timeout=120, env=environ, check=False
    )
    assert probe.returncode == 0, probe.stdout + probe.stderr
    found = json.loads(probe.stdout)
    assert found["s3"] == "clearml_core_storage_s3.driver"
    assert found["azure"] == "error: azure:// needs the Azure Blob backend: pip install 'clearml-core[azure]'"
    assert found["gs"].startswith("error: gs:// needs")

    packages = subprocess.run(
        [str(python), "-m", "pip", "list", "--format=json", "--disable-pip-version-check"],
        capture_output=True,
        text=True,
        timeout=120,
        env=environ,
        check=False,
    )
    names = {p["name"].lower() for p in json.loads(packages.stdout)}
    assert {"boto3", "clearml-core", "clearml-core-storage-s3"} <= names
    assert not names & {"moto", "azure-storage-blob", "google-cloud-storage", "paramiko"}
    assert sys.executable not in str(python)
