"""``pip install --find-links dist 'clearml-core[redis]'`` in a fresh venv gives the Redis control
plane, and nothing of the storage plugins; the installed CLI works against a real Redis."""

from __future__ import annotations

import json
import os
import subprocess
import venv
from pathlib import Path

import pytest

from plugins.controlplane_redis.tests.support import RedisServer

ROOT = Path(__file__).resolve().parents[3]


def _run(*command: str | Path, env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(part) for part in command], capture_output=True, text=True, timeout=timeout, env=env, check=False
    )


@pytest.mark.slow
def test_the_redis_extra_installs_the_redis_control_plane(
    tmp_path: Path, redis_server: RedisServer, prefix: str
) -> None:
    dist = tmp_path / "dist"
    built = _run("bash", ROOT / "scripts" / "build-dist.sh", dist, env=dict(os.environ))
    assert built.returncode == 0, built.stdout + built.stderr
    assert list(dist.glob("clearml_core_controlplane_redis-*.whl")), sorted(p.name for p in dist.iterdir())

    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHONPATH", "UV_"))}
    pip = (env_dir / "bin" / "python", "-m", "pip", "--disable-pip-version-check")
    installed = _run(*pip, "install", "--quiet", "--find-links", dist, "clearml-core[redis]", env=environ)
    assert installed.returncode == 0, installed.stdout + installed.stderr

    clearml = env_dir / "bin" / "clearml-core"
    listed = _run(clearml, "plugins", "list", "--json", env=environ, timeout=120)
    assert listed.returncode == 0, listed.stdout + listed.stderr
    plugins = {p["name"]: p for p in json.loads(listed.stdout)}
    assert plugins["controlplane_redis"]["status"] == "loaded", plugins["controlplane_redis"]
    assert plugins["controlplane_redis"]["distribution"] == "clearml-core-controlplane-redis"

    with_redis = {**environ, "CLEARML__AGENT__CONTROL_PLANE": redis_server.url(prefix)}
    assert _run(clearml, "queue", "create", "installed", env=with_redis, timeout=120).returncode == 0
    queues = _run(clearml, "queue", "list", "--json", env=with_redis, timeout=120)
    assert queues.returncode == 0, queues.stdout + queues.stderr
    assert [q["name"] for q in json.loads(queues.stdout)] == ["default", "installed"]

    packages = _run(*pip, "list", "--format=json", env=environ, timeout=120)
    names = {p["name"].lower() for p in json.loads(packages.stdout)}
    assert {"redis", "hiredis", "clearml-core", "clearml-core-controlplane-redis"} <= names
    assert not names & {"boto3", "azure-storage-blob", "google-cloud-storage", "paramiko"}
