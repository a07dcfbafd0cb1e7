"""The three credential resolvers of Azure URLs: clearml.conf (100), environment (200), azure-identity (300).

Each answers with :class:`~clearml_core.credentials.Credentials` whose ``values`` hold ``auth``
(``account_key``, ``sas``, ``connection_string`` or ``default_credential``), the
``account_name`` when known, the secret (``account_key`` or ``sas_token``) and, for connection
strings, the ``account_url`` they name. A resolver that has nothing says why
(``describe_miss(url, config)``), for ``storage resolve`` and for the missing-credentials error.
No Azure SDK is imported here.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from clearml_core.credentials.chain import Credentials
from clearml_core.credentials.resolvers import ConfigEntryResolver, ConfigLookup, ExplainingResolver, Misses
from clearml_core.storage.settings import text_or_none
from clearml_core_storage_azure.settings import (
    ENTRIES,
    ENV_ACCESS_KEY,
    ENV_ACCOUNT,
    ENV_CONNECTION_STRING,
    ENV_KEY,
    ENV_SAS_TOKEN,
    AzureSettings,
    ConnectionString,
    Entry,
    locate,
    parse_connection_string,
    sas_value,
    settings_for,
)

if TYPE_CHECKING:
    from clearml_core.config import Config

AUTH_KINDS = ("account_key", "sas", "connection_string", "default_credential")


def _from_connection(connection: ConnectionString, text: str) -> dict[str, Any]:
    values: dict[str, Any] = {
        "auth": "connection_string",
        "account_name": connection.account_name,
        "account_url": connection.account_url,
        "connection_string": text,
    }
    if connection.account_key:
        values["account_key"] = connection.account_key
    else:
        values["sas_token"] = connection.sas_token
    return values


def entry_credentials(entry: Entry) -> dict[str, Any] | None:
    """An entry's credentials: its connection string, else account key, else SAS token."""
    own = entry.values
    if entry.connection is not None:
        return _from_connection(entry.connection, str(own.get("connection_string")))
    key = text_or_none(own.get("account_key"))
    if key:
        return {"auth": "account_key", "account_name": entry.account, "account_key": key}
    sas = sas_value(own.get("sas_token"))
    if sas:
        return {"auth": "sas", "account_name": entry.account, "sas_token": sas}
    return None


_Found = ConfigLookup[AzureSettings, Entry]


class ConfigResolver(ConfigEntryResolver[Entry, _Found]):
    """``sdk.azure.storage.containers``: the entry for the account and container, else the account."""

    entries = ENTRIES
    wanted = "account_key, sas_token or connection_string"

    def lookup(self, url: Any, config: Config) -> _Found:
        settings = settings_for(config)
        location = locate(url)
        entry = settings.match(location)
        account = f"account {location.account!r} " if location.account else ""
        target = f"{account}container {location.container!r}"
        return ConfigLookup(settings, target, entry, settings.entry_source(entry) if entry else "")

    def from_entry(self, entry: Entry, found: _Found) -> Credentials | None:
        values = entry_credentials(entry)
        return Credentials(values, found.entry_source) if values is not None else None

    def unusable(self, entry: Entry, found: _Found) -> None:
        found.settings.warn_unusable(entry)


class EnvironmentResolver(ExplainingResolver):
    """MLflow's and Azure's variables, in MLflow's order.

    ``AZURE_STORAGE_CONNECTION_STRING`` (when its account is the URL's), then
    ``AZURE_STORAGE_ACCESS_KEY`` (the key of the URL's account, or of ``AZURE_STORAGE_ACCOUNT``),
    then ClearML's ``AZURE_STORAGE_ACCOUNT`` + ``AZURE_STORAGE_KEY`` (or + ``AZURE_STORAGE_SAS_TOKEN``)
    when that account is the URL's.
    """

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._environ = environ

    def find(self, url: Any, config: Config, misses: Misses) -> Credentials | None:
        environ = os.environ if self._environ is None else self._environ
        account = locate(url).account

        conn_text = text_or_none(environ.get(ENV_CONNECTION_STRING))
        if conn_text:
            connection = parse_connection_string(conn_text, f"env {ENV_CONNECTION_STRING}")
            if account is None or connection.account_name is None or _same(connection.account_name, account):
                return Credentials(_from_connection(connection, conn_text), f"env {ENV_CONNECTION_STRING}")
            misses.note(f"{ENV_CONNECTION_STRING} is for the account {connection.account_name!r}")

        env_account = text_or_none(environ.get(ENV_ACCOUNT))
        access_key = text_or_none(environ.get(ENV_ACCESS_KEY))
        if access_key:
            name = account or env_account
            if name:
                values = {"auth": "account_key", "account_name": name, "account_key": access_key}
                return Credentials(values, f"env {ENV_ACCESS_KEY}")
            misses.note(f"{ENV_ACCESS_KEY} is set but the URL names no account (set {ENV_ACCOUNT})")

        key = text_or_none(environ.get(ENV_KEY))
        sas = sas_value(environ.get(ENV_SAS_TOKEN))
        if env_account and (key or sas):
            if account is None or _same(env_account, account):
                if key:
                    values = {"auth": "account_key", "account_name": env_account, "account_key": key}
                    return Credentials(values, f"env {ENV_ACCOUNT} + {ENV_KEY}")
                values = {"auth": "sas", "account_name": env_account, "sas_token": str(sas)}
                return Credentials(values, f"env {ENV_ACCOUNT} + {ENV_SAS_TOKEN}")
            misses.note(f"{ENV_ACCOUNT} is {env_account!r}, not the URL's account")
        elif key or sas:
            misses.note(f"{ENV_KEY if key else ENV_SAS_TOKEN} is set but {ENV_ACCOUNT} is not")
        if not misses:
            misses.note(
                f"{ENV_CONNECTION_STRING}, {ENV_ACCESS_KEY} and {ENV_ACCOUNT} + {ENV_KEY} are not set"
            )
        return None


def _same(one: str, other: str) -> bool:
    return one.lower() == other.lower()


def identity_installed() -> bool:
    """Whether azure-identity can be imported (checked without importing it)."""
    try:
        return importlib.util.find_spec("azure.identity") is not None
    except (ImportError, ValueError):
        return False


class DefaultCredentialResolver(ExplainingResolver):
    """azure-identity's ``DefaultAzureCredential``: environment (``AZURE_CLIENT_ID`` …), workload and
    managed identity, Azure CLI / PowerShell / developer logins.

    It answers whenever azure-identity is installed: which of its sources works shows on the first
    request (a refusal names them), since finding out here would mean asking the network.
    """

    def find(self, url: Any, config: Config, misses: Misses) -> Credentials | None:
        if not identity_installed():
            misses.note(
                "azure-identity is not installed (pip install 'clearml-core-storage-azure[identity]')"
            )
            return None
        location = locate(url)
        values: dict[str, Any] = {"auth": "default_credential"}
        if location.account:
            values["account_name"] = location.account
        return Credentials(values, "azure-identity DefaultAzureCredential")


__all__ = [
    "AUTH_KINDS",
    "ConfigResolver",
    "DefaultCredentialResolver",
    "EnvironmentResolver",
    "entry_credentials",
    "identity_installed",
]
