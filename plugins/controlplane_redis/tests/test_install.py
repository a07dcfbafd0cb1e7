"""``pip install --find-links dist 'clearml-core[redis]'`` in a fresh venv gives the Redis control
plane, and nothing of the storage plugins; the installed CLI works against a real Redis."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from plugins.controlplane_redis.tests.support import RedisServer
from tests.extra_install import install_extra, run


@pytest.mark.slow
def test_the_redis_extra_installs_the_redis_control_plane(
    tmp_path: Path, redis_server: RedisServer, prefix: str
) -> None:
    installed = install_extra(tmp_path, "redis", "clearml_core_controlplane_redis-*.whl")

    plugin = installed.plugin("controlplane_redis")
    assert plugin["status"] == "loaded", plugin
    assert plugin["distribution"] == "clearml-core-controlplane-redis"

    with_redis = {**installed.environ, "CLEARML__AGENT__CONTROL_PLANE": redis_server.url(prefix)}
    assert (
        run(installed.clearml_core, "queue", "create", "installed", env=with_redis, timeout=120).returncode
        == 0
    )
    queues = run(installed.clearml_core, "queue", "list", "--json", env=with_redis, timeout=120)
    assert queues.returncode == 0, queues.stdout + queues.stderr
    assert [q["name"] for q in json.loads(queues.stdout)] == ["default", "installed"]

    assert {"redis", "hiredis", "clearml-core", "clearml-core-controlplane-redis"} <= installed.packages
    assert not installed.packages & {"boto3", "azure-storage-blob", "google-cloud-storage", "paramiko"}
