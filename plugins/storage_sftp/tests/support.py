"""Helpers of the SFTP plugin's tests: a real sshd on loopback, its keys, clearml.conf snippets."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SSHD_HINT = "install OpenSSH's server (Debian: apt-get install openssh-server; scripts/test.sh does)"


def sshd_executable() -> str:
    for candidate in ("/usr/sbin/sshd", shutil.which("sshd")):
        if candidate and os.path.isfile(candidate):
            return candidate
    raise RuntimeError(f"no sshd on this machine: {SSHD_HINT}")


def keygen(path: Path, kind: str = "ed25519", passphrase: str = "") -> Path:
    """A new private key at ``path`` (public key beside it, ``.pub``)."""
    subprocess.run(
        ["ssh-keygen", "-q", "-t", kind, "-N", passphrase, "-C", "clearml-core-test", "-f", str(path)],
        check=True,
        capture_output=True,
    )
    return path


@dataclass
class SSHServer:
    """The test sshd: where it listens, its keys, its log."""

    port: int
    pid: int
    folder: Path
    user: str
    host_key: Path
    client_key: Path
    log: Path
    data: Path
    """A folder the tests write under (absolute on the server, which is this machine)."""

    @property
    def netloc(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def host_entry(self) -> str:
        return f"[127.0.0.1]:{self.port}"

    def host_public_key(self) -> str:
        """``ssh-ed25519 AAAA…`` of the server's host key."""
        kind, blob = (self.host_key.with_suffix(".pub")).read_text().split()[:2]
        return f"{kind} {blob}"

    def known_hosts_line(self) -> str:
        return f"{self.host_entry} {self.host_public_key()}\n"

    def base_url(self, user: bool = True) -> str:
        """``sftp://user@127.0.0.1:PORT/<data>/<unique>/``, a fresh folder for one test."""
        who = f"{self.user}@" if user else ""
        return f"sftp://{who}{self.netloc}{self.data}/{uuid.uuid4().hex}/"

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def logins(self) -> int:
        """Logins sshd accepted so far (one per SSH connection that authenticated)."""
        return len(re.findall(r"Accepted (?:publickey|password) for ", self.log_text()))

    def sftp_sessions(self) -> int:
        """SFTP channels sshd started so far."""
        return len(re.findall(r"Starting session: subsystem .sftp. for ", self.log_text()))


def conf_entry(server: SSHServer, **extra: Any) -> str:
    """clearml.conf text with one sdk.sftp.credentials entry for the test server (key login)."""
    fields = {"host": server.netloc, "username": server.user, "key_filename": str(server.client_key), **extra}
    body = ", ".join(f"{k}: {_hocon(v)}" for k, v in fields.items())
    return f"sdk.sftp.credentials: [ {{ {body} }} ]\n"


def _hocon(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_hocon(v) for v in value) + "]"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def load(text: str, folder: Path) -> Any:
    """A configuration from clearml.conf text (and the defaults), ignoring CLEARML__ variables."""
    from clearml_core.settings import load_config

    path = folder / f"clearml-{uuid.uuid4().hex[:8]}.conf"
    path.write_text(text, encoding="utf-8")
    return load_config(path, environ={})


__all__ = [
    "SSHD_HINT",
    "SSHServer",
    "conf_entry",
    "keygen",
    "load",
    "sshd_executable",
]
