"""The control-plane conformance suite against a real Redis."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from clearml_core_controlplane_redis.plane import RedisControlPlane

from clearml_core.testing.controlplane import ControlPlaneContract
from plugins.controlplane_redis.tests.support import RedisServer


class TestRedisContract(ControlPlaneContract):
    @pytest.fixture
    def control_plane(self, redis_server: RedisServer, prefix: str) -> Iterator[RedisControlPlane]:
        plane = RedisControlPlane.from_url(redis_server.url(prefix))
        yield plane
        plane.close()
