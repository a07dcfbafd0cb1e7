"""Reading ``sdk.sftp`` and ``~/.ssh/config`` into where an ``sftp://`` URL points and how to log in.

Where (:class:`Location`): the host as written in the URL may be an alias of ``~/.ssh/config``,
whose ``HostName``, ``Port`` and ``User`` apply the way ssh applies them. The port is the URL's,
else the matching credentials entry's, else ``~/.ssh/config``'s, else 22; the user is the URL's,
else the entry's ``username``, else ``~/.ssh/config``'s ``User``, else ``sdk.sftp.username``, else
the local user name (what ssh does).

``sdk.sftp.credentials`` entries match on the whole ``host[:port]`` as written in the URL (no port
on either side means 22: ``files:222`` never serves ``files:2222``); an entry with a ``username``
serves that user only when the URL names one; the most specific entry wins whatever the list
order (host + port + user over host + port). Fields an entry leaves unset inherit the section.

Nothing here imports paramiko except :func:`ssh_config_for`, which parses ``~/.ssh/config`` with
``paramiko.SSHConfig`` so that ``Host`` patterns, ``Match`` and tokens mean what they mean to ssh.
"""

from __future__ import annotations

import getpass
import hashlib
import logging
import os
import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from clearml_core.credentials.matching import inherit
from clearml_core.errors import ConfigError
from clearml_core.storage.settings import FirstTime, SettingsCache, home_relative, source_file, text_or_none

if TYPE_CHECKING:
    from clearml_core.config import Config
    from clearml_core.storage.url import StorageURL

log = logging.getLogger("clearml_core.storage.sftp")

SECTION = "sdk.sftp"
ENTRIES = "sdk.sftp.credentials"
DEFAULT_PORT = 22
CREDENTIAL_FIELDS = ("key_filename", "password", "passphrase")

_HOST_PORT = re.compile(r"^(?P<host>\[[^\]]+\]|[^:\[\]]+)(?::(?P<port>\d+))?$")


def _paths(value: Any) -> tuple[str, ...]:
    """A path or a list of paths (HOCON list or comma-free string), ``~`` expanded."""
    if value is None:
        return ()
    items = value if isinstance(value, list | tuple) else [value]
    return tuple(os.path.expanduser(text) for text in (text_or_none(item) for item in items) if text)


def local_user() -> str:
    """The login name ssh would use when nothing names one."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (a container's arbitrary uid)
        return str(os.getuid())


@dataclass(frozen=True)
class Entry:
    """One ``sdk.sftp.credentials`` entry, with unset fields taken from the section."""

    index: int
    host: str
    port: int | None
    username: str | None
    values: Mapping[str, Any]
    """The entry merged over the section's defaults."""
    own: Mapping[str, Any]
    """What the entry itself sets."""

    @property
    def name(self) -> str:
        return f"{ENTRIES}[{self.index}]"

    @property
    def where(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        target = f"{host}:{self.port}" if self.port is not None else host
        return f"{self.username}@{target}" if self.username else target

    def serves(self, host: str | None, port: int | None, user: str | None) -> bool:
        if host is None or host.lower() != self.host:
            return False
        if (port or DEFAULT_PORT) != (self.port or DEFAULT_PORT):
            return False
        return self.username is None or user is None or user == self.username

    def rank(self, user: str | None) -> tuple[int, int]:
        """Higher is more specific: a user named by both the entry and the URL, then a port."""
        return (1 if self.username and user == self.username else 0, 1 if self.port is not None else 0)


@dataclass(frozen=True)
class SshHost:
    """What ``~/.ssh/config`` says about one host (empty when the file has nothing for it)."""

    hostname: str | None = None
    port: int | None = None
    user: str | None = None
    identity_files: tuple[str, ...] = ()
    identities_only: bool = False
    path: str | None = None
    """The config file that said it (None when there is none)."""
    proxy_jump: str | None = None
    """``ProxyJump`` as written (``[user@]host[:port]``, comma-separated); None when unset or ``none``."""
    proxy_command: str | None = None
    """``ProxyCommand`` with its ``%`` tokens not yet expanded; None when unset or ``none``."""


@dataclass(frozen=True)
class Location:
    """Where an ``sftp://`` URL points, with what each part came from."""

    url: StorageURL
    host: str
    """The server to connect to (``~/.ssh/config``'s HostName applied)."""
    port: int
    user: str
    path: str
    alias: str | None
    """The host as written in the URL, when ``~/.ssh/config`` maps it to another HostName."""
    user_source: str
    port_source: str
    entry: Entry | None
    ssh: SshHost = field(default_factory=SshHost)

    @property
    def endpoint(self) -> str:
        """``host:port`` as users write it (``[::1]:2222`` for IPv6)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def login(self) -> str:
        """``user@host:port`` for messages."""
        return f"{self.user}@{self.endpoint}"


@dataclass(frozen=True)
class PoolSettings:
    """What every SSH connection of a pool is opened with."""

    known_hosts: tuple[str, ...]
    """Extra known_hosts files from ``sdk.sftp.known_hosts`` (``~`` expanded)."""
    accept_new_host_keys: bool
    connect_timeout: float
    max_connections: int
    channels_per_connection: int
    keepalive: int

    @property
    def save_file(self) -> str:
        """Where accepted new host keys are written: the first configured file, else ssh's own."""
        return self.known_hosts[0] if self.known_hosts else os.path.expanduser("~/.ssh/known_hosts")

    def read_files(self) -> list[str]:
        """Every known_hosts file checked, in order: ssh's user and system files, then ours."""
        files = [os.path.expanduser("~/.ssh/known_hosts"), "/etc/ssh/ssh_known_hosts", *self.known_hosts]
        return list(dict.fromkeys(files))


def _parse_host(raw: str, where: str) -> tuple[str, int | None]:
    text = raw.strip()
    if "://" in text:
        text = text.split("://", 1)[1]
    if "@" in text:
        raise ConfigError(f"{where}: host {raw!r} holds a user; write it as username: …")
    text = text.strip("/")
    match = _HOST_PORT.match(text)
    if not match:
        raise ConfigError(f"{where}: host {raw!r} is not host[:port]")
    port = int(match.group("port")) if match.group("port") else None
    if port is not None and not 0 < port < 65536:
        raise ConfigError(f"{where}: host {raw!r} has an invalid port")
    return match.group("host").strip("[]").lower(), port


class SFTPSettings:
    """``sdk.sftp`` of one loaded configuration, parsed once."""

    def __init__(self, config: Config) -> None:
        section = config.get_dict(SECTION)
        self.defaults: dict[str, Any] = {k: v for k, v in section.items() if k != "credentials"}
        self.origin = config.origin(SECTION)
        self.entries_origin = config.origin(ENTRIES)
        self.origins = {
            name: config.origin(f"{SECTION}.{name}")
            for name in (*CREDENTIAL_FIELDS, "username", "known_hosts")
        }
        self.entries: list[Entry] = []
        for index, raw in enumerate(config.get_list(ENTRIES)):
            self.entries.append(self._entry(index, raw))
        self.ssh_config_path = os.path.expanduser(
            text_or_none(config.get(f"{SECTION}.ssh_config")) or "~/.ssh/config"
        )

        def number(name: str, default: float, minimum: float) -> float:
            value = config.get_float(f"{SECTION}.{name}", default)
            return max(minimum, default if value is None else value)

        self.pool = PoolSettings(
            known_hosts=_paths(config.get(f"{SECTION}.known_hosts")),
            accept_new_host_keys=config.get_bool(f"{SECTION}.accept_new_host_keys", False),
            connect_timeout=number("connect_timeout", 30, 1),
            max_connections=int(number("max_connections", 4, 1)),
            channels_per_connection=int(number("channels_per_connection", 8, 1)),
            keepalive=int(number("keepalive", 30, 0)),
        )
        self._first_warning = FirstTime()

    def _entry(self, index: int, raw: Any) -> Entry:
        where = f"{source_file(self.entries_origin)}: {ENTRIES}[{index}]"
        if not isinstance(raw, Mapping):
            raise ConfigError(
                f"{where} must be an object {{ host: …, username: …, key_filename: … }}, got {raw!r}"
            )
        own = {str(k): v for k, v in raw.items()}
        unknown = sorted(set(own) - {"host", "port", "username", *CREDENTIAL_FIELDS})
        if unknown:
            raise ConfigError(
                f"{where} has unknown field(s) {', '.join(unknown)}; entries take host, port, username, "
                "key_filename, password and passphrase"
            )
        host_text = text_or_none(own.get("host"))
        if not host_text:
            raise ConfigError(f'{where} names no host; add host: "server[:port]"')
        host, port = _parse_host(host_text, where)
        if own.get("port") not in (None, ""):
            try:
                explicit = int(own["port"])
            except (TypeError, ValueError):
                raise ConfigError(f"{where}: port must be a number, got {own['port']!r}") from None
            if port is not None and port != explicit:
                raise ConfigError(f"{where}: host says port {port} but port says {explicit}")
            port = explicit
        values = inherit({k: v for k, v in self.defaults.items() if k in CREDENTIAL_FIELDS}, own)
        return Entry(index, host, port, text_or_none(own.get("username")), values, own)

    # -- matching --------------------------------------------------------------------------------
    def match(self, host: str | None, port: int | None, user: str | None) -> Entry | None:
        """The most specific entry for ``host:port`` (and ``user``); ties go to the earliest."""
        best: Entry | None = None
        for entry in self.entries:
            if entry.serves(host, port, user) and (best is None or entry.rank(user) > best.rank(user)):
                best = entry
        return best

    def locate(self, url: StorageURL | str) -> Location:
        """Where ``url`` points: host, port and user after ``sdk.sftp`` and ``~/.ssh/config``."""
        if isinstance(url, str):
            from clearml_core.storage.url import parse_url

            url = parse_url(url)
        written = (url.host or "").lower()
        entry = self.match(written, url.port, url.user)
        ssh = ssh_config_for(self.ssh_config_path, written)
        alias = written if ssh.hostname and ssh.hostname.lower() != written else None
        host = (ssh.hostname or written).lower()
        if url.port is not None:
            port, port_source = url.port, "the URL"
        elif entry is not None and entry.port is not None:
            port, port_source = entry.port, entry.name
        elif ssh.port is not None:
            port, port_source = ssh.port, home_relative(ssh.path or "~/.ssh/config")
        else:
            port, port_source = DEFAULT_PORT, "default"
        section_user = text_or_none(self.defaults.get("username"))
        if url.user:
            user, user_source = url.user, "the URL"
        elif entry is not None and entry.username:
            user, user_source = entry.username, entry.name
        elif ssh.user:
            user, user_source = ssh.user, home_relative(ssh.path or "~/.ssh/config")
        elif section_user:
            user, user_source = section_user, f"{SECTION}.username"
        else:
            user, user_source = local_user(), "the local user"
        return Location(url, host, port, user, url.path or "/", alias, user_source, port_source, entry, ssh)

    # -- warnings and sources --------------------------------------------------------------------
    def warn_unusable(self, entry: Entry) -> None:
        """Say once that ``entry`` brings no key or password (its user and port still apply)."""
        if not self._first_warning(entry.index):
            return
        log.warning(
            "%s: %s (%s) has no key_filename or password and %s has none to inherit; its username "
            "and port apply, the login comes from the ssh agent or ~/.ssh. Add key_filename (or "
            "password) to use it.",
            source_file(self.entries_origin),
            entry.name,
            entry.where,
            SECTION,
        )

    def entry_source(self, entry: Entry) -> str:
        return f"{source_file(self.entries_origin)}: {entry.name}"

    def section_source(self, key: str) -> str:
        return f"{source_file(self.origins.get(key, self.origin))}: {SECTION}.{key}"


# -- ~/.ssh/config ---------------------------------------------------------------------------------

_ssh_lock = threading.Lock()
_ssh_cache: dict[tuple[str, int, int], Any] = {}


def _parsed_ssh_config(path: str) -> Any:
    """``paramiko.SSHConfig`` of ``path``, re-read when the file changes; None when there is none."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    key = (path, st.st_mtime_ns, st.st_size)
    with _ssh_lock:
        found = _ssh_cache.get(key)
    if found is not None:
        return found
    import paramiko

    try:
        parsed = paramiko.SSHConfig.from_path(path)
    except (OSError, UnicodeDecodeError, paramiko.ConfigParseError) as error:
        raise ConfigError(f"{home_relative(path)} cannot be read: {error}") from None
    with _ssh_lock:
        _ssh_cache.clear()  # one file per process in practice; keep only its latest version
        _ssh_cache[key] = parsed
    return parsed


def ssh_config_for(path: str, host: str) -> SshHost:
    """What the ssh config file at ``path`` says about ``host`` (ssh's own matching rules)."""
    if not host:
        return SshHost()
    parsed = _parsed_ssh_config(path)
    if parsed is None:
        return SshHost()
    import paramiko

    try:
        found = parsed.lookup(host)
    except (paramiko.ConfigParseError, paramiko.CouldNotCanonicalize, OSError) as error:
        raise ConfigError(f"{home_relative(path)}: the entry for {host!r} cannot be used: {error}") from None
    hostname = text_or_none(found.get("hostname"))
    port_text = text_or_none(found.get("port"))
    port = None
    if port_text is not None:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise ConfigError(f"{home_relative(path)}: Port {port_text!r} for {host!r} is not a port number")
        port = int(port_text)
    identity = tuple(os.path.expanduser(p) for p in found.get("identityfile", []) if text_or_none(p))
    jump = text_or_none(found.get("proxyjump"))
    return SshHost(
        hostname=hostname if hostname and hostname.lower() != host else None,
        port=port,
        user=text_or_none(found.get("user")),
        identity_files=identity,
        identities_only=str(found.get("identitiesonly", "no")).lower() == "yes",
        path=path,
        proxy_jump=None if jump is None or jump.lower() == "none" else jump,
        proxy_command=_raw_proxy_command(parsed, host, found),
    )


def _raw_proxy_command(parsed: Any, host: str, found: Mapping[str, Any]) -> str | None:
    """``ProxyCommand`` before paramiko expands ``%p`` / ``%r`` from the config alone.

    ssh expands them with the port and user the connection really uses (a URL may set both), so
    the tokens are expanded later, by :func:`~clearml_core_storage_sftp.jumps.proxy_command`.
    """
    expanded = text_or_none(found.get("proxycommand"))
    if expanded is None or expanded.lower() == "none":
        return None
    raw_lookup = getattr(parsed, "_lookup", None)  # paramiko's lookup without the token expansion
    if raw_lookup is None:
        return expanded
    try:
        raw = text_or_none(raw_lookup(hostname=host).get("proxycommand"))
    except Exception:
        return expanded
    return raw or expanded


def fingerprint_secret(value: str | None) -> str | None:
    """A stable stand-in for a secret in pool keys and reprs (never the secret itself)."""
    if not value:
        return None
    return hashlib.sha256(value.encode("utf-8")).hexdigest()[:16]


settings_for = SettingsCache(SFTPSettings).get
"""The parsed SFTP settings of a configuration (parsed once per loaded configuration)."""


def key_files_text(paths: Sequence[str]) -> str:
    return ", ".join(home_relative(p) for p in paths)


__all__ = [
    "DEFAULT_PORT",
    "ENTRIES",
    "SECTION",
    "Entry",
    "Location",
    "PoolSettings",
    "SFTPSettings",
    "SshHost",
    "fingerprint_secret",
    "home_relative",
    "key_files_text",
    "local_user",
    "settings_for",
    "source_file",
    "ssh_config_for",
]
