"""Reading ``redis://`` URLs and ``agent.redis``: what is accepted, what is refused, where the password
comes from, and that the plane's own URL never carries it."""

from __future__ import annotations

from pathlib import Path

import pytest
from clearml_core_controlplane_redis.settings import (
    DEFAULT_PREFIX,
    RedisSettings,
    parse_url,
    resolve_credentials,
)

from clearml_core.controlplane import ControlPlaneError
from clearml_core.settings import load_config


def test_a_full_url() -> None:
    target = parse_url("rediss://alice:p%40ss-word-1@Queue-Host:6380/3?prefix=team-a")
    assert (target.scheme, target.host, target.port, target.db) == ("rediss", "queue-host", 6380, 3)
    assert (target.username, target.password, target.prefix, target.tls) == (
        "alice",
        "p@ss-word-1",
        "team-a",
        True,
    )
    assert target.url == "rediss://alice@queue-host:6380/3?prefix=team-a"
    assert "p@ss" not in repr(target)


def test_defaults() -> None:
    target = parse_url("redis://localhost")
    assert (target.port, target.db, target.prefix, target.password) == (6379, 0, DEFAULT_PREFIX, None)
    assert target.url == "redis://localhost:6379/0"
    assert parse_url("redis://[::1]:7000/").url == "redis://[::1]:7000/0"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("redis:///0", "names no host"),
        ("redis://:secret-pw@/0", "names no host"),
        ("redis://host:port/0", "not valid"),
        ("redis://host:6379/zero", "must be a number"),
        ("redis://host/0?prefx=a", "unknown parameter prefx"),
        ("redis://host/0?prefix=", "key prefix"),
        ("redis://host/0?prefix=two words", "key prefix"),
        ("http://host/0", "not a redis:// or rediss:// URL"),
    ],
)
def test_bad_urls_say_what_is_wrong(url: str, message: str) -> None:
    with pytest.raises(ControlPlaneError, match=message) as raised:
        parse_url(url)
    assert "secret-pw" not in str(raised.value)


def _config(folder: Path, text: str):  # type: ignore[no-untyped-def]
    path = folder / "clearml.conf"
    path.write_text(text, encoding="utf-8")
    return load_config(path, environ={})


def test_the_password_comes_from_the_url_the_configured_plane_or_agent_redis(tmp_path: Path) -> None:
    config = _config(
        tmp_path,
        'agent.control_plane: "redis://bob:configured-pw@queue-host:6379/0?prefix=x"\n'
        'agent.redis { username: "carol", password: "fallback-pw" }\n',
    )
    settings = RedisSettings.from_config(config)
    own = resolve_credentials(parse_url("redis://dave:own-pw@queue-host:6379/0"), config, settings)
    assert (own.username, own.password) == ("dave", "own-pw")
    # the plane's URL (no password) opens the configured store with the configured credentials
    same = resolve_credentials(parse_url("redis://queue-host:6379/0?prefix=y"), config, settings)
    assert (same.username, same.password) == ("bob", "configured-pw")
    other = resolve_credentials(parse_url("redis://other-host:6379/0"), config, settings)
    assert (other.username, other.password) == ("carol", "fallback-pw")


def test_settings_are_checked(tmp_path: Path) -> None:
    settings = RedisSettings.from_config(_config(tmp_path, "agent.watchdog.threshold_sec: 10\n"))
    assert settings.worker_ttl_sec == 60.0  # never below a minute
    assert settings.max_log_lines == 100_000
    with pytest.raises(ControlPlaneError, match="max_log_lines must be a positive number"):
        RedisSettings.from_config(_config(tmp_path, "agent.redis.max_log_lines: 0\n"))


def test_rediss_checks_the_servers_certificate(tls_redis, clearml_conf: Path) -> None:  # type: ignore[no-untyped-def]
    from tests.helpers import run_cli

    url = tls_redis.url("tls")
    clearml_conf.write_text(f'agent.control_plane: "{url}"\n', encoding="utf-8")
    unknown_ca = run_cli("queue", "list")
    assert unknown_ca.code == 2 and unknown_ca.err.count("\n") == 1, unknown_ca.text
    assert "certificate verify failed" in unknown_ca.err and "agent.redis.tls.ca_certs" in unknown_ca.err
    clearml_conf.write_text(
        f'agent.control_plane: "{url}"\nagent.redis.tls.ca_certs: "{tls_redis.certificate}"\n',
        encoding="utf-8",
    )
    assert run_cli("queue", "create", "secure").code == 0
    listed = run_cli("queue", "list")
    assert listed.code == 0 and "secure" in listed.out, listed.text
    plain = run_cli(
        "queue", "list", env={"CLEARML__AGENT__CONTROL_PLANE": url.replace("rediss://", "redis://")}
    )
    assert plain.code == 2 and plain.err.count("\n") == 1, plain.text
