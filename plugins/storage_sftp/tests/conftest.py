"""Fixtures of the SFTP plugin's tests: a real sshd on 127.0.0.1, a private HOME, fresh pools.

The sshd is one per test session, started from its own config, host key and authorized_keys in a
temporary folder (the machine's /etc/ssh and ~/.ssh are never read or touched), listening on a
free port of 127.0.0.1 and stopped by its PID. It failing to start is an error of every test that
needs it, never a skip.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from clearml_core.testing.servers import free_port, server_process
from plugins.storage_sftp.tests.support import SSHD_HINT, SSHServer, conf_entry, keygen, sshd_executable

SSHD_CONFIG = """\
Port {port}
ListenAddress 127.0.0.1
HostKey {folder}/host_key
PidFile {folder}/sshd.pid
AuthorizedKeysFile {folder}/authorized_keys
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
StrictModes no
UsePAM no
UseDNS no
LogLevel {log_level}
AllowTcpForwarding yes
MaxStartups 64:30:128
Subsystem sftp internal-sftp
"""


@contextlib.contextmanager
def running_sshd(folder: Path, extra_config: str = "", log_level: str = "VERBOSE") -> Iterator[SSHServer]:
    """An sshd of our own in ``folder`` (keys, config, log), stopped by its PID when done.

    ``log_level="DEBUG"`` makes its log show each channel it opens (``direct-tcpip`` included).
    """
    import getpass

    executable = sshd_executable()
    keygen(folder / "host_key")
    client_key = keygen(folder / "client_key")
    (folder / "authorized_keys").write_text((folder / "client_key.pub").read_text())
    (folder / "authorized_keys").chmod(0o600)
    port = free_port()
    config = folder / "sshd_config"
    config.write_text(SSHD_CONFIG.format(port=port, folder=folder, log_level=log_level) + extra_config)
    if os.geteuid() == 0:
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # sshd's privilege separation folder
    checked = subprocess.run([executable, "-t", "-f", str(config)], capture_output=True, text=True)
    if checked.returncode != 0:
        raise RuntimeError(f"sshd refuses the test config: {checked.stderr.strip()} ({SSHD_HINT})")
    log = folder / "sshd.log"
    data = folder / "data"
    data.mkdir()
    command = [executable, "-D", "-f", str(config), "-E", str(log)]
    with server_process(command, port, log=log, name="sshd", writes_log=True, timeout=30) as process:
        yield SSHServer(
            port=port,
            pid=process.pid,
            folder=folder,
            user=getpass.getuser(),
            host_key=folder / "host_key",
            client_key=client_key,
            log=log,
            data=data,
        )


@pytest.fixture(scope="session")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SSHServer]:
    with running_sshd(tmp_path_factory.mktemp("sshd")) as server:
        yield server


@pytest.fixture(scope="session")
def session_known_hosts(sshd: SSHServer) -> Path:
    """A known_hosts file that trusts the test server (for configs that name it)."""
    path = sshd.folder / "known_hosts"
    path.write_text(sshd.known_hosts_line())
    return path


@pytest.fixture(autouse=True)
def _isolated_sftp(clearml_home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private HOME (no ~/.ssh of the machine), no ssh agent, fresh drivers, pools and chains."""
    from clearml_core_storage_sftp import resolvers
    from clearml_core_storage_sftp.pool import reset_pools

    from clearml_core.credentials import reset_chains
    from clearml_core.storage.backends import reset_drivers

    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    monkeypatch.delenv("SSH_AGENT_PID", raising=False)

    def reset() -> None:
        reset_drivers()
        reset_pools()
        reset_chains()
        with resolvers._warned_lock:
            resolvers._warned.clear()

    reset()
    yield clearml_home
    reset()


@pytest.fixture
def known_hosts(clearml_home: Path, sshd: SSHServer) -> Path:
    """``~/.ssh/known_hosts`` of the private HOME, trusting the test server."""
    folder = clearml_home / ".ssh"
    folder.mkdir(mode=0o700, exist_ok=True)
    path = folder / "known_hosts"
    path.write_text(sshd.known_hosts_line())
    return path


@pytest.fixture
def sftp_conf(clearml_conf: Path, sshd: SSHServer, known_hosts: Path) -> Path:
    """The test's clearml.conf with a credentials entry (key login) for the test server."""
    clearml_conf.write_text(conf_entry(sshd))
    return clearml_conf
