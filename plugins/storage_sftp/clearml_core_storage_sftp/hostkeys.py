"""Host key checking as ssh does it: known_hosts files, never a silent trust of an unknown server.

A server's key is looked up in ``~/.ssh/known_hosts``, ``/etc/ssh/ssh_known_hosts`` and the files
of ``sdk.sftp.known_hosts`` (hashed entries and ``[host]:port`` names included):

* a known key that matches: the connection goes on;
* an unknown host: :class:`UnknownHostKeyError`, which says how to trust it — unless
  ``sdk.sftp.accept_new_host_keys`` is true, in which case the key is saved (to the first
  ``sdk.sftp.known_hosts`` file, else ``~/.ssh/known_hosts``) with a warning showing its
  fingerprint, like ssh's ``StrictHostKeyChecking=accept-new``;
* a key that differs from the known one: :class:`HostKeyChangedError`, always, whatever the
  settings: it is what a man-in-the-middle looks like.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

import paramiko

from clearml_core.errors import UserError
from clearml_core.storage.errors import StorageError
from clearml_core_storage_sftp.settings import PoolSettings, home_relative

log = logging.getLogger("clearml_core.storage.sftp")

_save_lock = threading.Lock()


class UnknownHostKeyError(StorageError, UserError):
    """The server's host key is in no known_hosts file and new keys are not accepted."""


class HostKeyChangedError(StorageError, UserError):
    """The server's host key differs from the one known_hosts holds for it."""


def describe_key(key: paramiko.PKey) -> str:
    """``ssh-ed25519 SHA256:…``, the way ssh shows a key."""
    return f"{key.get_name()} {key.fingerprint}"


def host_entry(host: str, port: int) -> str:
    """The name a known_hosts file uses: ``host`` on port 22, else ``[host]:port``."""
    return host if port == 22 else f"[{host}]:{port}"


def _keyscan_command(host: str, port: int, target: str) -> str:
    port_option = f"-p {port} " if port != 22 else ""
    return f"ssh-keyscan {port_option}{host} >> {home_relative(target)}"


def files_with(name: str, files: list[str]) -> list[str]:
    """The known_hosts files among ``files`` that hold a key for ``name``."""
    found = []
    for path in files:
        if not os.path.isfile(path):
            continue
        try:
            keys = paramiko.HostKeys(path)
        except (OSError, paramiko.SSHException, ValueError):
            continue
        if keys.lookup(name) is not None:
            found.append(path)
    return found


class KnownHostsPolicy(paramiko.MissingHostKeyPolicy):
    """What to do with a host that no known_hosts file names (a changed key never gets here)."""

    def __init__(self, settings: PoolSettings, host: str, port: int) -> None:
        self._settings = settings
        self._host = host
        self._port = port

    def missing_host_key(self, client: Any, hostname: str, key: paramiko.PKey) -> None:
        if not self._settings.accept_new_host_keys:
            target = self._settings.save_file
            looked = ", ".join(home_relative(p) for p in self._settings.read_files())
            raise UnknownHostKeyError(
                f"the SSH host key of {hostname} is not known ({describe_key(key)}; looked in {looked}). "
                f"Check the fingerprint with the server's administrator, then trust it with "
                f"`{_keyscan_command(self._host, self._port, target)}` (or by connecting once with "
                f"ssh), or set sdk.sftp.accept_new_host_keys: true to accept and save keys of new hosts"
            )
        target = self._settings.save_file
        save_host_key(target, hostname, key)
        client.get_host_keys().add(hostname, key.get_name(), key)
        log.warning(
            "accepted the new SSH host key of %s (%s) and saved it to %s "
            "(sdk.sftp.accept_new_host_keys is true); compare the fingerprint with the server's",
            hostname,
            describe_key(key),
            home_relative(target),
        )


def save_host_key(path: str, hostname: str, key: paramiko.PKey) -> None:
    """Append ``hostname key`` to a known_hosts file, unless another thread just did."""
    with _save_lock:
        if os.path.isfile(path):
            try:
                known = paramiko.HostKeys(path).lookup(hostname)
            except (OSError, paramiko.SSHException, ValueError):
                known = None
            if known is not None and known.get(key.get_name()) == key:
                return
        folder = os.path.dirname(path) or "."
        if not os.path.isdir(folder):
            os.makedirs(folder, mode=0o700, exist_ok=True)
        line = f"{hostname} {key.get_name()} {key.get_base64()}\n"
        try:
            with open(path, "a+", encoding="utf-8") as out:
                out.seek(0, os.SEEK_END)
                if out.tell() > 0:
                    out.seek(out.tell() - 1)
                    if out.read(1) != "\n":
                        line = "\n" + line
                out.write(line)
        except OSError as error:
            raise StorageError(
                f"cannot save the host key of {hostname} to {home_relative(path)}: {error.strerror or error}"
            ) from None


def changed_key_error(
    settings: PoolSettings, host: str, port: int, got: paramiko.PKey, expected: paramiko.PKey
) -> HostKeyChangedError:
    name = host_entry(host, port)
    files = files_with(name, settings.read_files()) or settings.read_files()[:1]
    where = ", ".join(home_relative(p) for p in files)
    removal = " ".join(f"`ssh-keygen -R '{name}' -f {home_relative(p)}`" for p in files)
    return HostKeyChangedError(
        f"the SSH host key of {name} has CHANGED: the server sent {describe_key(got)}, but {where} "
        f"holds {describe_key(expected)}. Someone may be intercepting the connection, or the server "
        f"was reinstalled; nothing was sent to it. If the change is expected (ask the server's "
        f"administrator), remove the old key with {removal} and trust the new one"
    )


__all__ = [
    "HostKeyChangedError",
    "KnownHostsPolicy",
    "UnknownHostKeyError",
    "changed_key_error",
    "describe_key",
    "host_entry",
    "save_host_key",
]
