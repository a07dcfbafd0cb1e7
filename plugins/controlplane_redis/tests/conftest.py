"""Fixtures of the Redis plugin's tests: real redis-servers on loopback, a private home.

A machine without redis-server skips these tests, except in CI (``CI=true``), where a Redis that
cannot start fails them: ``scripts/test.sh`` installs it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from plugins.controlplane_redis.tests.support import (
    RedisServer,
    fresh_prefix,
    redis_server_binary,
    running_redis,
)

PASSWORD = "s3cret-redis-pass-9271"


def _need_redis_server() -> None:
    if redis_server_binary() is None and os.environ.get("CI", "").lower() != "true":
        pytest.skip("redis-server is not installed (scripts/test.sh installs it)")


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One redis-server for the session; tests keep apart by key prefix."""
    _need_redis_server()
    with running_redis(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture(scope="session")
def guarded_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A redis-server that wants a password (and knows an ACL user ``alice``)."""
    _need_redis_server()
    with running_redis(
        tmp_path_factory.mktemp("redis-auth"), password=PASSWORD, users={"alice": PASSWORD + "-alice"}
    ) as server:
        yield server


@pytest.fixture(scope="session")
def tls_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A redis-server that speaks only TLS, with a self-signed certificate for 127.0.0.1."""
    _need_redis_server()
    with running_redis(tmp_path_factory.mktemp("redis-tls"), tls=True) as server:
        yield server


@pytest.fixture
def durable_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of this test alone, with an append-only file: it may be restarted or killed."""
    _need_redis_server()
    server = RedisServer(tmp_path / "redis-data", appendonly=True)
    server.start()
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture
def prefix() -> str:
    return fresh_prefix()


@pytest.fixture(autouse=True)
def _isolated(clearml_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("CLEARML_REDIS_SERVICE_HOST", "CLEARML_REDIS_SERVICE_PORT"):
        monkeypatch.delenv(name, raising=False)
    return clearml_home
