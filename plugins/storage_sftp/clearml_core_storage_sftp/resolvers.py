"""The three credential resolvers of ``sftp://`` URLs: clearml.conf (100), the URL (200), ssh's own (300).

Each answers with :class:`~clearml_core.credentials.Credentials` whose ``values`` hold
``username`` (the login the credentials are for), ``auth`` (``key_file``, ``agent`` or
``password``) and what the login needs: ``key_filename`` (a list of private key files),
``passphrase``, ``password``, ``allow_agent``. The host, port and user come from
:meth:`~clearml_core_storage_sftp.settings.SFTPSettings.locate` whichever resolver answers.
A resolver that has nothing says why (``describe_miss(url, config)``), for ``storage resolve`` and
for the missing-credentials error.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from clearml_core.credentials.chain import Credentials
from clearml_core.credentials.resolvers import ConfigEntryResolver, ConfigLookup, ExplainingResolver, Misses
from clearml_core.errors import ConfigError
from clearml_core.storage.settings import text_or_none
from clearml_core_storage_sftp.settings import (
    ENTRIES,
    SECTION,
    Entry,
    Location,
    SFTPSettings,
    _paths,
    home_relative,
    key_files_text,
    settings_for,
)

if TYPE_CHECKING:
    from clearml_core.config import Config

log = logging.getLogger("clearml_core.storage.sftp")

DEFAULT_IDENTITIES = ("id_rsa", "id_ecdsa", "id_ecdsa_sk", "id_ed25519", "id_ed25519_sk")
"""The key files ssh tries in ``~/.ssh`` when ``~/.ssh/config`` names none."""
AGENT_VARIABLE = "SSH_AUTH_SOCK"


def _existing_key_files(paths: tuple[str, ...], where: str) -> list[str]:
    missing = [p for p in paths if not os.path.isfile(p)]
    if missing:
        raise ConfigError(
            f"{where}: key_filename {key_files_text(missing)} does not exist; write the path of a "
            "private key file (e.g. ~/.ssh/id_ed25519)"
        )
    return list(paths)


def _configured(values: Mapping[str, Any], where: str, user: str) -> dict[str, Any] | None:
    """The login an entry or the section sets: key files (with a passphrase), else a password."""
    keys = _paths(values.get("key_filename"))
    password = text_or_none(values.get("password"))
    if keys:
        found: dict[str, Any] = {
            "username": user,
            "auth": "key_file",
            "key_filename": _existing_key_files(keys, where),
        }
        passphrase = text_or_none(values.get("passphrase"))
        if passphrase:
            found["passphrase"] = passphrase
        if password:
            found["password"] = password  # tried after the keys, as ssh would
        return found
    if password:
        return {"username": user, "auth": "password", "password": password}
    return None


def _location(url: Any, config: Config) -> Location:
    return settings_for(config).locate(url)


@dataclass(frozen=True)
class _Found(ConfigLookup[SFTPSettings, Entry]):
    location: Location


class ConfigResolver(ConfigEntryResolver[Entry, _Found]):
    """``sdk.sftp.credentials`` (the entry of the URL's host[:port]), then ``sdk.sftp`` itself."""

    entries = ENTRIES
    section = SECTION
    wanted = "key_filename or password"

    def lookup(self, url: Any, config: Config) -> _Found:
        settings = settings_for(config)
        location = settings.locate(url)
        entry = location.entry
        target = location.url.endpoint or location.host
        return _Found(settings, target, entry, settings.entry_source(entry) if entry else "", location)

    def from_entry(self, entry: Entry, found: _Found) -> Credentials | None:
        values = _configured(entry.values, found.entry_source, found.location.user)
        return Credentials(values, found.entry_source) if values is not None else None

    def from_section(self, found: _Found) -> Credentials | None:
        settings = found.settings
        field = "key_filename" if _paths(settings.defaults.get("key_filename")) else "password"
        values = _configured(settings.defaults, settings.section_source(field), found.location.user)
        return Credentials(values, settings.section_source(field)) if values is not None else None

    def unusable(self, entry: Entry, found: _Found) -> None:
        found.settings.warn_unusable(entry)


_warned_lock = threading.Lock()
_warned: set[tuple[str, str, int | None]] = set()


class UrlPasswordResolver(ExplainingResolver):
    """``sftp://user:password@host/…``: works, but the password ends up in logs and shell history."""

    def find(self, url: Any, config: Config, misses: Misses) -> Credentials | None:
        if isinstance(url, str):
            from clearml_core.storage.url import parse_url

            url = parse_url(url)
        if url.password is None:
            misses.note("the URL holds no password")
            return None
        location = _location(url, config)
        key = (location.user, location.host, location.port)
        with _warned_lock:
            first = key not in _warned
            _warned.add(key)
        if first:
            log.warning(
                "%s: a password written in the URL shows up in shell history, logs and task records; "
                "put it in %s (password) or, better, use a key (key_filename, the ssh agent)",
                url,
                ENTRIES,
            )
        values = {"username": location.user, "auth": "password", "password": url.password}
        return Credentials(values, f"URL {url}")


class SshResolver(ExplainingResolver):
    """What ssh itself would use: ``~/.ssh/config`` IdentityFile, the ssh agent, ``~/.ssh/id_*``."""

    def find(self, url: Any, config: Config, misses: Misses) -> Credentials | None:
        location = _location(url, config)
        ssh = location.ssh
        sources: list[str] = []
        if ssh.identity_files:
            keys = [p for p in ssh.identity_files if os.path.isfile(p)]
            if keys:
                sources.append(
                    f"{home_relative(ssh.path or '~/.ssh/config')} IdentityFile {key_files_text(keys)}"
                )
            else:
                log.warning(
                    "%s: IdentityFile %s for %s does not exist",
                    home_relative(ssh.path or "~/.ssh/config"),
                    key_files_text(ssh.identity_files),
                    location.alias or location.host,
                )
        else:
            folder = os.path.expanduser("~/.ssh")
            keys = [path for name in DEFAULT_IDENTITIES if os.path.isfile(path := os.path.join(folder, name))]
            if keys:
                sources.append(key_files_text(keys))
        agent_keys = 0 if ssh.identities_only else agent_key_count()
        if agent_keys:
            sources.append(f"ssh agent ({AGENT_VARIABLE}, {agent_keys} key{'s' if agent_keys != 1 else ''})")
        if not keys and not agent_keys:
            if not os.environ.get(AGENT_VARIABLE):
                no_agent = f"no ssh agent ({AGENT_VARIABLE} is not set)"
            elif ssh.identities_only:
                no_agent = "IdentitiesOnly keeps the agent out"
            else:
                no_agent = "the ssh agent holds no key"
            no_key = "no IdentityFile of ~/.ssh/config exists" if ssh.identity_files else "no ~/.ssh/id_* key"
            misses.note(f"{no_key}, and {no_agent}")
            return None
        values: dict[str, Any] = {
            "username": location.user,
            "auth": "key_file" if keys else "agent",
            "key_filename": keys,
            "allow_agent": bool(agent_keys),
        }
        return Credentials(values, "; ".join(sources))


def agent_key_count() -> int:
    """How many keys the ssh agent at ``$SSH_AUTH_SOCK`` offers (0 without an agent)."""
    if not os.environ.get(AGENT_VARIABLE):
        return 0
    import paramiko

    try:
        agent = paramiko.Agent()
    except (paramiko.SSHException, OSError):
        return 0
    try:
        return len(agent.get_keys())
    except (paramiko.SSHException, OSError):
        return 0
    finally:
        agent.close()


__all__ = [
    "DEFAULT_IDENTITIES",
    "ConfigResolver",
    "SshResolver",
    "UrlPasswordResolver",
    "agent_key_count",
]
