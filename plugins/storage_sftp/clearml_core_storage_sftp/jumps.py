"""``ProxyJump`` and ``ProxyCommand`` of ``~/.ssh/config``: how ssh would reach a host, for sftp://.

A host whose entry says ``ProxyJump [user@]jump[:port]`` (a comma-separated chain; ``none``: none)
is reached through SSH connections to the jump hosts, as ``ssh -J`` does. Each jump host logs in
the way ssh would log in to it: its own entry's HostName, Port, User, IdentityFile and
IdentitiesOnly, else ``~/.ssh/id_*`` and the ssh agent (never the target's clearml.conf
credentials, which belong to the target). The first jump host's own ``ProxyJump`` applies too.
``ProxyJump`` wins over a ``ProxyCommand`` of the same entry; without it, ``ProxyCommand`` runs
with ``%h``, ``%p``, ``%r`` and ``%%`` expanded from the connection's host, port and user.
"""

from __future__ import annotations

import os
import re

from clearml_core.errors import ConfigError
from clearml_core_storage_sftp.errors import MissingCredentialsError
from clearml_core_storage_sftp.pool import Login
from clearml_core_storage_sftp.resolvers import DEFAULT_IDENTITIES, agent_key_count
from clearml_core_storage_sftp.settings import (
    DEFAULT_PORT,
    Location,
    SFTPSettings,
    SshHost,
    home_relative,
    key_files_text,
    local_user,
    ssh_config_for,
)

MAX_JUMPS = 8
"""More hops than this means a loop (an alias that jumps through itself)."""

_HOP = re.compile(r"^(?:ssh://)?(?:(?P<user>[^@/]+)@)?(?P<host>\[[^\]]+\]|[^:/\[\]@]+)(?::(?P<port>\d+))?/?$")


def parse_proxy_jump(text: str, where: str) -> list[tuple[str, str | None, int | None]]:
    """``[user@]host[:port],…`` (or ``ssh://…``) as (host, user, port) hops."""
    hops = []
    for part in text.split(","):
        match = _HOP.match(part.strip())
        port = int(match.group("port")) if match and match.group("port") else None
        if not match or (port is not None and not 0 < port < 65536):
            raise ConfigError(f"{where}: ProxyJump {part.strip()!r} is not [user@]host[:port]")
        hops.append((match.group("host").strip("[]"), match.group("user"), port))
    return hops


def jump_logins(settings: SFTPSettings, ssh: SshHost, depth: int = 0) -> tuple[Login, ...]:
    """The jump hosts ``ssh``'s entry goes through, first to last (empty without ``ProxyJump``)."""
    if not ssh.proxy_jump:
        return ()
    where = home_relative(ssh.path or settings.ssh_config_path)
    if depth >= MAX_JUMPS:
        raise ConfigError(f"{where}: ProxyJump goes through more than {MAX_JUMPS} hosts; does it loop?")
    hops = parse_proxy_jump(ssh.proxy_jump, where)
    first = ssh_config_for(settings.ssh_config_path, hops[0][0].lower())
    logins = jump_logins(settings, first, depth + 1)
    for alias, user, port in hops:
        logins += (_jump_login(settings, alias, user, port),)
    if len(logins) > MAX_JUMPS:
        raise ConfigError(f"{where}: ProxyJump goes through more than {MAX_JUMPS} hosts; does it loop?")
    return logins


def _jump_login(settings: SFTPSettings, alias: str, user: str | None, port: int | None) -> Login:
    ssh = ssh_config_for(settings.ssh_config_path, alias.lower())
    where = home_relative(ssh.path or settings.ssh_config_path)
    if ssh.identity_files:
        keys = [p for p in ssh.identity_files if os.path.isfile(p)]
    else:
        folder = os.path.expanduser("~/.ssh")
        keys = [path for name in DEFAULT_IDENTITIES if os.path.isfile(path := os.path.join(folder, name))]
    agent = not ssh.identities_only and agent_key_count() > 0
    if not keys and not agent:
        raise MissingCredentialsError(
            f"no key to log in to the ProxyJump host {alias}: "
            + (
                f"its IdentityFile {key_files_text(ssh.identity_files)} does not exist"
                if ssh.identity_files
                else "no IdentityFile in its ~/.ssh/config entry, no ~/.ssh/id_* key"
            )
            + " and no ssh agent key; give it an IdentityFile in "
            + where
        )
    values = {"auth": "key_file" if keys else "agent", "key_filename": keys, "allow_agent": agent}
    return Login.build(
        (ssh.hostname or alias).lower(),
        port or ssh.port or DEFAULT_PORT,
        user or ssh.user or local_user(),
        values,
        f"{where} ProxyJump {alias}",
        alias=alias,
    )


def proxy_command(location: Location) -> str | None:
    """The target's ``ProxyCommand`` with ssh's tokens expanded (None without one, or with ProxyJump)."""
    command = location.ssh.proxy_command
    if command is None or location.ssh.proxy_jump:
        return None
    tokens = {"h": location.host, "p": str(location.port), "r": location.user, "%": "%"}
    return re.sub(r"%([hpr%])", lambda m: tokens[m.group(1)], command)


__all__ = ["MAX_JUMPS", "jump_logins", "parse_proxy_jump", "proxy_command"]
