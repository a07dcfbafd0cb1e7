"""SSH connections and SFTP channels, pooled per (host, port, user, credentials); thread-safe.

One :class:`SFTPPool` per distinct login (host, port, user, the credentials and the connection
settings), shared by every driver of the process. A caller checks out one SFTP channel at a time
(:meth:`SFTPPool.channel`); a paramiko ``SFTPClient`` is never used by two threads at once. An
idle channel is reused, so a thousand sequential operations open one connection and one channel.
When several threads work at once (a folder transfer's workers), each gets its own channel:
new ones are spread over up to ``max_connections`` SSH connections (each with its own transport
thread), then up to ``channels_per_connection`` per connection; past that, callers wait.

A channel that fails with a connection error is thrown away, and a connection whose transport
died is dropped with all its channels; the next caller opens fresh ones.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import paramiko

from clearml_core.errors import ConfigError
from clearml_core.storage.errors import StorageError, TransientStorageError
from clearml_core_storage_sftp.errors import (
    SFTPAuthenticationError,
    SFTPConnectionError,
    is_connection_error,
)
from clearml_core_storage_sftp.hostkeys import KnownHostsPolicy, changed_key_error
from clearml_core_storage_sftp.settings import PoolSettings, fingerprint_secret, home_relative, key_files_text

WAIT_FOR_CHANNEL = 300.0
"""Seconds a caller waits for a free channel when every one the pool may open is in use."""


@dataclass(frozen=True)
class Login:
    """Who logs in where, and with what: everything a connection needs. Never shows a secret."""

    host: str
    port: int
    user: str
    auth: str
    key_files: tuple[str, ...] = ()
    allow_agent: bool = False
    password: str | None = field(default=None, repr=False, compare=False)
    passphrase: str | None = field(default=None, repr=False, compare=False)
    source: str = field(default="", compare=False)
    # stand-ins for the secrets, so two logins that differ only in a password do not compare equal
    password_id: str | None = None
    passphrase_id: str | None = None
    alias: str | None = None
    """The host as ``~/.ssh/config`` and ``ProxyJump`` name it, for messages (None: ``host``)."""
    via: tuple[Login, ...] = ()
    """The ``ProxyJump`` hosts to go through, in order (the first is connected to directly)."""
    proxy_command: str | None = None
    """A ``ProxyCommand`` (tokens expanded) whose stdin / stdout carry the connection."""

    @classmethod
    def build(
        cls,
        host: str,
        port: int,
        user: str,
        values: dict[str, Any],
        source: str,
        *,
        alias: str | None = None,
        via: tuple[Login, ...] = (),
        proxy_command: str | None = None,
    ) -> Login:
        password = values.get("password") or None
        passphrase = values.get("passphrase") or None
        return cls(
            host=host,
            port=port,
            user=user,
            auth=str(values.get("auth") or "key_file"),
            key_files=tuple(values.get("key_filename") or ()),
            allow_agent=bool(values.get("allow_agent")),
            password=password,
            passphrase=passphrase,
            source=source,
            password_id=fingerprint_secret(password),
            passphrase_id=fingerprint_secret(passphrase),
            alias=alias,
            via=via,
            proxy_command=proxy_command,
        )

    @property
    def endpoint(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def jump_name(self) -> str:
        """``the ProxyJump host bastion (ml@10.0.0.1:22)``, for the errors of a jump host."""
        return f"the ProxyJump host {self.alias or self.host} ({self.user}@{self.endpoint})"

    def tried(self) -> str:
        """What this login offers the server, for error messages (no secret)."""
        parts = []
        if self.key_files:
            parts.append(f"key file{'s' if len(self.key_files) > 1 else ''} {key_files_text(self.key_files)}")
        if self.allow_agent:
            parts.append("the ssh agent's keys")
        if self.password:
            parts.append("a password")
        return " and ".join(parts) or "nothing"


@dataclass
class _Connection:
    client: paramiko.SSHClient
    number: int
    channels: int = 0
    limit: int = 0
    """Channels the server allows here: ``channels_per_connection`` until it refuses one."""

    @property
    def alive(self) -> bool:
        transport = self.client.get_transport()
        return transport is not None and transport.is_active()


@dataclass
class Channel:
    """One SFTP session, checked out by one thread at a time."""

    sftp: paramiko.SFTPClient
    connection: _Connection

    @property
    def alive(self) -> bool:
        return self.connection.alive and not self.sftp.sock.closed


@dataclass
class PoolStats:
    """Counters the tests and ``storage resolve`` read; they only grow."""

    connections_opened: int = 0
    channels_opened: int = 0
    most_busy: int = 0
    """The most channels ever checked out at once."""


class SFTPPool:
    """SSH connections and SFTP channels of one login (see the module docstring)."""

    def __init__(self, login: Login, settings: PoolSettings) -> None:
        self.login = login
        self.settings = settings
        self.stats = PoolStats()
        self._cond = threading.Condition()
        self._idle: list[Channel] = []
        self._connections: list[_Connection] = []
        self._connecting = 0
        self._busy = 0
        self._closed = False
        self.posix_rename: bool | None = None
        """Whether the server does ``posix-rename@openssh.com`` (None until the first upload asks)."""

    # -- checking channels out and in -----------------------------------------------------------
    @contextlib.contextmanager
    def channel(self) -> Iterator[Channel]:
        """A channel for the duration of the ``with`` block; dropped if a connection error escapes."""
        channel = self.acquire()
        broken = False
        try:
            yield channel
        except BaseException as error:
            broken = is_connection_error(error)
            raise
        finally:
            self.release(channel, broken=broken)

    def acquire(self) -> Channel:
        deadline = time.monotonic() + WAIT_FOR_CHANNEL
        while True:
            with self._cond:
                plan = self._plan()
                while plan is None:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise TransientStorageError(
                            f"every SFTP channel to {self.login.endpoint} stayed busy for {WAIT_FOR_CHANNEL:.0f} s "
                            f"({self._busy} in use; sdk.sftp.max_connections / channels_per_connection)"
                        )
                    self._cond.wait(min(left, 1.0))
                    plan = self._plan()
                if isinstance(plan, Channel):
                    self._checked_out()
                    return plan
            channel = self._open(plan)
            if channel is not None:
                return channel

    def release(self, channel: Channel, *, broken: bool = False) -> None:
        with self._cond:
            self._busy -= 1
            keep = not broken and not self._closed and channel.alive
            if keep:
                self._idle.append(channel)
            else:
                self._drop_channel(channel)
            self._cond.notify()
        if not keep:
            with contextlib.suppress(Exception):
                channel.sftp.close()

    def _checked_out(self) -> None:
        self._busy += 1
        self.stats.most_busy = max(self.stats.most_busy, self._busy)

    # -- planning (under the lock) ---------------------------------------------------------------
    def _plan(self) -> Channel | _Connection | str | None:
        """An idle channel, a connection to open a channel on, ``"new"`` (connect first), or None (wait)."""
        if self._closed:
            raise StorageError(f"the SFTP pool of {self.login.endpoint} is closed")
        while self._idle:
            channel = self._idle.pop()
            if channel.alive:
                return channel
            self._drop_channel(channel)
            with contextlib.suppress(Exception):
                channel.sftp.close()
        for dead in [c for c in self._connections if not c.alive]:
            self._connections.remove(dead)
            with contextlib.suppress(Exception):
                dead.client.close()
        if len(self._connections) + self._connecting < self.settings.max_connections:
            self._connecting += 1
            return "new"
        room = [c for c in self._connections if c.channels < c.limit]
        if room:
            connection = min(room, key=lambda c: c.channels)
            connection.channels += 1  # reserved; given back if the channel cannot be opened
            return connection
        return None

    def _drop_channel(self, channel: Channel) -> None:
        channel.connection.channels = max(0, channel.connection.channels - 1)

    # -- opening (outside the lock) ----------------------------------------------------------------
    def _open(self, plan: _Connection | str) -> Channel | None:
        """Open a channel as planned; None when the server refused one and the caller should re-plan."""
        if plan == "new":
            try:
                connection = self._connect()
            finally:
                with self._cond:
                    self._connecting -= 1
                    self._cond.notify_all()
            with self._cond:
                connection.channels = 1
                self._connections.append(connection)
        else:
            assert isinstance(plan, _Connection)
            connection = plan
        try:
            sftp = connection.client.open_sftp()
        except paramiko.ChannelException as error:
            # the server allows fewer sessions per connection than we asked for (sshd MaxSessions)
            with self._cond:
                connection.channels -= 1
                connection.limit = connection.channels
                self._cond.notify_all()
                refused_first = connection.channels == 0
                if refused_first and connection in self._connections:
                    self._connections.remove(connection)
            if refused_first:
                with contextlib.suppress(Exception):
                    connection.client.close()
                raise StorageError(
                    f"{self.login.endpoint} accepts the login of {self.login.user!r} but refuses to open an "
                    f"SFTP session ({error}); is SFTP enabled for this user on the server (Subsystem sftp)?"
                ) from None
            return None
        except Exception as error:
            with self._cond:
                connection.channels -= 1
                self._cond.notify_all()
            if is_connection_error(error):
                raise TransientStorageError(
                    f"cannot open an SFTP session on {self.login.endpoint}: {error or type(error).__name__}"
                ) from None
            raise
        with self._cond:
            self.stats.channels_opened += 1
            self._checked_out()
        return Channel(sftp, connection)

    def _connect(self) -> _Connection:
        client = connect(self.login, self.settings)
        with self._cond:
            self.stats.connections_opened += 1
            number = self.stats.connections_opened
        return _Connection(client, number, limit=self.settings.channels_per_connection)

    # -- the end --------------------------------------------------------------------------------
    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        with self._cond:
            self._closed = True
            idle, self._idle = self._idle, []
            connections, self._connections = self._connections, []
            self._cond.notify_all()
        for channel in idle:
            with contextlib.suppress(Exception):
                channel.sftp.close()
        for connection in connections:
            with contextlib.suppress(Exception):
                connection.client.close()


class _Client(paramiko.SSHClient):
    """An SSH client that, when closed, also closes the jump hosts' connections it goes through."""

    def __init__(self) -> None:
        super().__init__()
        self.jumps: list[paramiko.SSHClient] = []

    def close(self) -> None:
        super().close()
        jumps, self.jumps = self.jumps, []
        for jump in reversed(jumps):
            with contextlib.suppress(Exception):
                jump.close()


def connect(login: Login, settings: PoolSettings) -> paramiko.SSHClient:
    """One authenticated SSH connection, its host key checked; errors say what to do.

    With ``login.via`` (``ProxyJump``) the first jump host is connected to directly, each next host
    through a ``direct-tcpip`` channel of the one before, the target through the last; every jump
    host's key is checked like any host's, and closing the returned client closes them all. With
    ``login.proxy_command`` the command's stdin / stdout carry the connection, as ssh does it.
    """
    jumps: list[paramiko.SSHClient] = []
    sock: Any = None
    try:
        for index, hop in enumerate(login.via):
            client = _open(hop, settings, sock, jump=True)
            jumps.append(client)
            following = login.via[index + 1] if index + 1 < len(login.via) else login
            sock = _tunnel(client, hop, following, settings)
        if sock is None and login.proxy_command:
            sock = _proxy_command(login)
        target = _open(login, settings, sock, jump=False)
    except BaseException:
        for jump in reversed(jumps):
            with contextlib.suppress(Exception):
                jump.close()
        raise
    target.jumps = jumps
    return target


def _open(login: Login, settings: PoolSettings, sock: Any, *, jump: bool) -> _Client:
    client = _Client()
    for path in settings.read_files():
        if not os.path.isfile(path):
            continue
        try:
            client.load_system_host_keys(path)
        except (OSError, paramiko.SSHException, ValueError) as error:
            raise ConfigError(f"the known_hosts file {home_relative(path)} cannot be read: {error}") from None
    client.set_missing_host_key_policy(KnownHostsPolicy(settings, login.host, login.port))
    timeout = settings.connect_timeout
    try:
        client.connect(
            login.host,
            port=login.port,
            username=login.user,
            password=login.password,
            passphrase=login.passphrase,
            key_filename=list(login.key_files) or None,
            allow_agent=login.allow_agent,
            look_for_keys=False,
            timeout=timeout,
            banner_timeout=timeout,
            auth_timeout=timeout,
            channel_timeout=timeout,
            sock=sock,
        )
    except BaseException as error:
        client.close()
        with contextlib.suppress(Exception):
            if sock is not None:
                sock.close()
        found = _connect_error(error, login, settings)
        if jump and isinstance(found, StorageError):
            found = type(found)(f"{login.jump_name}: {found}")
        raise found from None
    transport = client.get_transport()
    if transport is not None and settings.keepalive:
        transport.set_keepalive(settings.keepalive)
    return client


def _tunnel(client: paramiko.SSHClient, hop: Login, following: Login, settings: PoolSettings) -> Any:
    """A ``direct-tcpip`` channel of ``hop``'s connection to the next host (what ``ssh -J`` opens)."""
    transport = client.get_transport()
    try:
        if transport is None:
            raise paramiko.SSHException("the connection is closed")
        return transport.open_channel(
            "direct-tcpip",
            (following.host, following.port),
            ("127.0.0.1", 0),
            timeout=settings.connect_timeout,
        )
    except paramiko.ChannelException as error:
        client.close()
        raise SFTPConnectionError(
            f"{hop.jump_name} cannot connect to {following.endpoint} ({error.text or error}); check the "
            "HostName and Port of that host, and that the jump host allows TCP forwarding "
            "(AllowTcpForwarding in its sshd_config)"
        ) from None
    except (EOFError, OSError, paramiko.SSHException) as error:
        client.close()
        raise TransientStorageError(
            f"{hop.jump_name} cannot connect to {following.endpoint}: {str(error) or type(error).__name__}"
        ) from None


def _proxy_command(login: Login) -> paramiko.ProxyCommand:
    """``ProxyCommand`` run by the shell, as ssh runs it (``exec``, so it gets the signals)."""
    assert login.proxy_command is not None
    shell = os.environ.get("SHELL") or "/bin/sh"
    try:
        return paramiko.ProxyCommand(shlex.join([shell, "-c", f"exec {login.proxy_command}"]))
    except (OSError, paramiko.SSHException) as error:
        raise SFTPConnectionError(
            f"cannot connect to {login.endpoint}: the ProxyCommand of ~/.ssh/config does not start ({error})"
        ) from None


def _connect_error(error: BaseException, login: Login, settings: PoolSettings) -> BaseException:
    where = f"{login.user}@{login.endpoint}"
    if isinstance(error, StorageError):
        return error
    if isinstance(error, paramiko.BadHostKeyException):
        return changed_key_error(settings, login.host, login.port, error.key, error.expected_key)
    if isinstance(error, paramiko.PasswordRequiredException):
        return SFTPAuthenticationError(
            f"cannot log in to {where}: the key file {key_files_text(login.key_files)} is encrypted and no "
            f"passphrase was given ({login.source}); set passphrase next to key_filename in sdk.sftp, or "
            "add the key to the ssh agent (ssh-add)"
        )
    if isinstance(error, paramiko.AuthenticationException) or (
        isinstance(error, paramiko.SSHException) and "authentication" in str(error).lower()
    ):
        allowed = getattr(error, "allowed_types", None)
        offered = f"; the server accepts {', '.join(allowed)}" if allowed else ""
        check = (
            "that the key is in the server's authorized_keys"
            if login.key_files or login.allow_agent
            else "the password"
        )
        return SFTPAuthenticationError(
            f"cannot log in to {where}: the server refused {login.tried()} (from {login.source}){offered}. "
            f"Check the user name and {check}; `clearml-core storage resolve URL` shows which settings apply"
        )
    if isinstance(error, socket.gaierror):
        return SFTPConnectionError(
            f"cannot connect to {login.endpoint}: unknown host name ({error.strerror or error}); check the "
            "URL's host, or HostName in ~/.ssh/config"
        )
    if isinstance(error, paramiko.ssh_exception.NoValidConnectionsError | ConnectionRefusedError):
        return SFTPConnectionError(
            f"cannot connect to {login.endpoint}: nothing accepts SSH connections there (connection "
            "refused); check the host and port (the URL's, the credentials entry's, or Port in ~/.ssh/config)"
        )
    if isinstance(error, EOFError | paramiko.SSHException | OSError):
        return TransientStorageError(
            f"cannot connect to {login.endpoint}: {str(error) or type(error).__name__}"
        )
    return error


_pools_lock = threading.Lock()
_pools: dict[tuple[Login, PoolSettings], SFTPPool] = {}


def pool_for(login: Login, settings: PoolSettings) -> SFTPPool:
    """The process-wide pool of ``login`` (one per login and connection settings)."""
    key = (login, settings)
    with _pools_lock:
        pool = _pools.get(key)
        if pool is None:
            pool = _pools[key] = SFTPPool(login, settings)
        return pool


def pools() -> list[SFTPPool]:
    with _pools_lock:
        return list(_pools.values())


def reset_pools() -> None:
    """Close every pooled connection (tests; after credentials change)."""
    with _pools_lock:
        found = list(_pools.values())
        _pools.clear()
    for pool in found:
        pool.close()


__all__ = [
    "WAIT_FOR_CHANNEL",
    "Channel",
    "Login",
    "PoolStats",
    "SFTPPool",
    "connect",
    "pool_for",
    "pools",
    "reset_pools",
]
