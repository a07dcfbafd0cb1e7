"""ProxyJump and ProxyCommand of ~/.ssh/config, against a real sshd that is its own jump host.

The sshd logs at DEBUG, so its log shows each ``direct-tcpip`` channel it opened for a jump: the
proof, from the server's side, that the connection really went through the jump host.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from clearml_core_storage_sftp.errors import SFTPConnectionError
from clearml_core_storage_sftp.jumps import parse_proxy_jump
from clearml_core_storage_sftp.pool import Login, pools

from clearml_core.errors import ConfigError
from clearml_core.storage.backends import driver_for
from clearml_core.storage.url import parse_url
from clearml_core.testing.servers import free_port
from plugins.storage_sftp.tests.support import SSHServer, load

RELAY = """\
import os, socket, sys, threading
sock = socket.create_connection((sys.argv[1], int(sys.argv[2])))
open(sys.argv[3], "a").write(f"{sys.argv[1]}:{sys.argv[2]}\\n")
def upstream():
    while data := os.read(0, 65536):
        sock.sendall(data)
    sock.shutdown(socket.SHUT_WR)
threading.Thread(target=upstream, daemon=True).start()
while data := sock.recv(65536):
    os.write(1, data)
"""


@pytest.fixture(scope="module")
def jump_sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SSHServer]:
    from plugins.storage_sftp.tests.conftest import running_sshd

    with running_sshd(tmp_path_factory.mktemp("sshd-jump"), log_level="DEBUG") as server:
        yield server


def _tunnels(server: SSHServer) -> list[str]:
    """The ``direct-tcpip`` targets sshd was asked for, from its log."""
    return re.findall(
        r"server_request_direct_tcpip: originator \S+ port \d+, target (\S+ port \d+)", server.log_text()
    )


@pytest.fixture
def ssh_home(clearml_home: Path, jump_sshd: SSHServer) -> Path:
    """~/.ssh of the private HOME: known_hosts trusting the server; the test writes config."""
    folder = clearml_home / ".ssh"
    folder.mkdir(mode=0o700, exist_ok=True)
    (folder / "known_hosts").write_text(jump_sshd.known_hosts_line())
    return folder


def _entry(alias: str, server: SSHServer, *, port: int | None = None, extra: str = "") -> str:
    return (
        f"Host {alias}\n  HostName 127.0.0.1\n  Port {port or server.port}\n  User {server.user}\n"
        f"  IdentityFile {server.client_key}\n{extra}"
    )


def _stat_through(server: SSHServer, tmp_path: Path, alias: str = "target") -> None:
    url = parse_url(f"sftp://{alias}{server.data}/")
    assert driver_for(url, load("", tmp_path)).stat(url).is_dir


def test_proxy_jump_goes_through_the_jump_host(jump_sshd, ssh_home, tmp_path):
    (ssh_home / "config").write_text(
        _entry("target", jump_sshd, extra="  ProxyJump jumpbox\n") + _entry("jumpbox", jump_sshd)
    )
    assert "AllowTcpForwarding yes" in (jump_sshd.folder / "sshd_config").read_text()
    tunnels, logins = len(_tunnels(jump_sshd)), jump_sshd.logins()
    _stat_through(jump_sshd, tmp_path)
    assert _tunnels(jump_sshd)[tunnels:] == [f"127.0.0.1 port {jump_sshd.port}"]
    assert jump_sshd.logins() - logins == 2  # the jump host, then the target through it
    [pool] = pools()
    assert [hop.alias for hop in pool.login.via] == ["jumpbox"]
    [connection] = pool._connections
    [jump] = connection.client.jumps
    assert jump.get_transport() is not None and jump.get_transport().is_active()
    pool.close()
    assert jump.get_transport() is None, "closing the target connection leaves the jump host's open"


def test_proxy_jump_chain_with_inline_user_and_port(jump_sshd, ssh_home, tmp_path):
    (ssh_home / "config").write_text(
        _entry("target", jump_sshd, extra=f"  ProxyJump jumpbox,{jump_sshd.user}@second:{jump_sshd.port}\n")
        + _entry("jumpbox", jump_sshd)
        + f"Host second\n  HostName 127.0.0.1\n  IdentityFile {jump_sshd.client_key}\n"
    )
    tunnels, logins = len(_tunnels(jump_sshd)), jump_sshd.logins()
    _stat_through(jump_sshd, tmp_path)
    assert len(_tunnels(jump_sshd)) - tunnels == 2
    assert jump_sshd.logins() - logins == 3
    [pool] = pools()
    assert [(hop.alias, hop.port) for hop in pool.login.via] == [
        ("jumpbox", jump_sshd.port),
        ("second", jump_sshd.port),
    ]


def test_refusing_jump_host_is_one_clear_error_naming_it(jump_sshd, ssh_home, tmp_path):
    closed = free_port()
    (ssh_home / "config").write_text(
        _entry("target", jump_sshd, extra="  ProxyJump jumpbox\n") + _entry("jumpbox", jump_sshd, port=closed)
    )
    logins = jump_sshd.logins()
    with pytest.raises(SFTPConnectionError) as caught:
        _stat_through(jump_sshd, tmp_path)
    message = str(caught.value)
    assert "\n" not in message
    assert "ProxyJump host jumpbox" in message and f"127.0.0.1:{closed}" in message
    assert "connection refused" in message
    assert jump_sshd.logins() == logins


def test_proxy_jump_none_connects_directly(jump_sshd, ssh_home, tmp_path):
    # ssh takes the first value it finds: the host's "none" beats the catch-all's jump
    (ssh_home / "config").write_text(
        _entry("target", jump_sshd, extra="  ProxyJump none\n") + "Host *\n  ProxyJump jumpbox\n"
    )
    tunnels, logins = len(_tunnels(jump_sshd)), jump_sshd.logins()
    _stat_through(jump_sshd, tmp_path)
    assert len(_tunnels(jump_sshd)) == tunnels
    assert jump_sshd.logins() - logins == 1
    [pool] = pools()
    assert pool.login.via == ()


def test_proxy_command_carries_the_connection(jump_sshd, ssh_home, tmp_path):
    relay, seen = tmp_path / "relay.py", tmp_path / "relay.log"
    relay.write_text(RELAY)
    (ssh_home / "config").write_text(
        _entry("target", jump_sshd, extra=f"  ProxyCommand {sys.executable} {relay} %h %p {seen}\n")
    )
    tunnels = len(_tunnels(jump_sshd))
    _stat_through(jump_sshd, tmp_path)
    assert seen.read_text() == f"127.0.0.1:{jump_sshd.port}\n"  # %h and %p expanded
    assert len(_tunnels(jump_sshd)) == tunnels


def test_jump_logins_show_no_secret_and_key_the_pool(jump_sshd, ssh_home):
    hop = Login("jump", 22, "me", "key_file", alias="jumpbox")
    plain = Login.build("t", 22, "me", {"password": "hunter2", "auth": "password"}, "conf")
    jumping = Login.build("t", 22, "me", {"password": "hunter2", "auth": "password"}, "conf", via=(hop,))
    assert "hunter2" not in repr(jumping) and "jumpbox" in repr(jumping)
    assert plain != jumping and hash(plain) != hash(jumping)


@pytest.mark.parametrize(
    "text, hops",
    [
        ("jump", [("jump", None, None)]),
        ("ml@jump:2200", [("jump", "ml", 2200)]),
        ("a, ml@b:22,ssh://c:2", [("a", None, None), ("b", "ml", 22), ("c", None, 2)]),
        ("[::1]:2222", [("::1", None, 2222)]),
    ],
)
def test_parse_proxy_jump(text, hops):
    assert parse_proxy_jump(text, "~/.ssh/config") == hops


def test_bad_proxy_jump_is_a_config_error():
    with pytest.raises(ConfigError, match="ProxyJump 'a:b:c'"):
        parse_proxy_jump("a:b:c", "~/.ssh/config")
