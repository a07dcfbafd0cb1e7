"""Reading ``sdk.azure.storage``, connection strings and Azure URLs; no azure-storage-blob here.

ClearML matches ``sdk.azure.storage.containers`` entries on the account name and, when the entry
names one, the container, taking the first match in list order. Here the most specific entry
wins whatever the order (account + container beats account alone; the list order decides between
equals), names are compared whole (the container ``data`` never serves ``data-archive``, the
account ``acct`` never ``acct2``), and an entry that brings no credentials still lends its
``account_url`` while the credentials come from the next resolvers of the chain.

Where a URL points (:class:`Location`) does not depend on credentials:

* ``azure://<account>.blob.core.windows.net/<container>/<blob>`` and
  ``wasb(s)://<container>@<account>.blob.core.windows.net/<blob>``: the account is the first label
  of the host, the endpoint ``https://<host>`` (sovereign clouds keep their own suffix; ADLS Gen2
  ``*.dfs.*`` hosts are served through their ``*.blob.*`` twin);
* ``azure://127.0.0.1:10000/<account>/<container>/<blob>`` (an IP address, ``localhost`` or any
  host with a port): Azurite's path-style form, endpoint ``http://127.0.0.1:10000/<account>``;
* ``abfs(s)://<container>/<blob>``: no account in the URL; it comes from the matching entry, the
  connection string or ``AZURE_STORAGE_ACCOUNT``.

An entry's ``account_url`` (or a connection string's ``BlobEndpoint``) replaces the endpoint: that
is how Azurite, private endpoints and proxies are reached with the ordinary ``azure://`` URLs.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from clearml_core.errors import ConfigError
from clearml_core.storage.settings import FirstTime, SettingsCache, source_file, text_or_none

if TYPE_CHECKING:
    from clearml_core.config import Config
    from clearml_core.storage.url import StorageURL

log = logging.getLogger("clearml_core.storage.azure")

SECTION = "sdk.azure.storage"
ENTRIES = "sdk.azure.storage.containers"

# Environment variables, in the order the environment resolver reads them.
ENV_CONNECTION_STRING = "AZURE_STORAGE_CONNECTION_STRING"  # MLflow, Azure CLI
ENV_ACCESS_KEY = "AZURE_STORAGE_ACCESS_KEY"  # MLflow: the key of the URL's account
ENV_ACCOUNT = "AZURE_STORAGE_ACCOUNT"  # ClearML, Azure CLI
ENV_KEY = "AZURE_STORAGE_KEY"  # ClearML, Azure CLI
ENV_SAS_TOKEN = "AZURE_STORAGE_SAS_TOKEN"  # noqa: S105  (a variable name; Azure CLI)

DEFAULT_SUFFIX = "core.windows.net"
DEVSTORE_ACCOUNT = "devstoreaccount1"
# Azurite's published development key (UseDevelopmentStorage=true); not a secret.
DEVSTORE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

KIB = 1024
MIB = 1024 * KIB


def _is_ip(host: str) -> bool:
    if ":" in host:
        return True
    parts = host.split(".")
    return len(parts) == 4 and all(p.isdigit() and int(p) < 256 for p in parts)


def path_style(host: str | None, port: int | None) -> bool:
    """Whether an ``azure://`` host is an emulator-style endpoint with the account in the path."""
    if not host:
        return False
    return port is not None or host == "localhost" or _is_ip(host)


def account_of_url(account_url: str) -> str | None:
    """The account an endpoint URL serves: the first path segment (Azurite) or first host label."""
    parts = urlsplit(account_url)
    segment = parts.path.strip("/").split("/", 1)[0]
    host = (parts.hostname or "").lower()
    if segment and path_style(host, parts.port):
        return segment
    if host and not path_style(host, parts.port):
        return host.split(".", 1)[0]
    return segment or None


def normalise_account_url(value: str, where: str) -> str:
    text = value.strip().rstrip("/")
    parts = urlsplit(text)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        raise ConfigError(
            f"{where}: account_url must be an http(s) URL such as "
            f"https://myaccount.blob.core.windows.net or http://127.0.0.1:10000/{DEVSTORE_ACCOUNT}"
        )
    if parts.query:
        raise ConfigError(f"{where}: account_url must not carry a query; put a SAS token in sas_token")
    return text


def sas_value(value: Any) -> str | None:
    text = text_or_none(value)
    return text.lstrip("?") if text else None


# -- connection strings -----------------------------------------------------------------------


@dataclass(frozen=True, repr=False)
class ConnectionString:
    """The parts of a storage connection string that reach Blob storage."""

    account_name: str | None
    account_key: str | None
    sas_token: str | None
    account_url: str | None

    def __repr__(self) -> str:  # never show the key
        return f"ConnectionString(account_name={self.account_name!r}, account_url={self.account_url!r})"


def parse_connection_string(text: str, where: str) -> ConnectionString:
    """Parse ``Key=Value;…`` the way azure-storage-blob does (Azurite's dev-storage shortcut too).

    Raises :class:`ConfigError` naming ``where`` (never the string itself, which holds the key).
    """
    settings: dict[str, str] = {}
    for part in text.strip().strip(";").split(";"):
        if not part.strip():
            continue
        name, sep, value = part.partition("=")
        if not sep or not name.strip():
            raise ConfigError(
                f"{where} is not a storage connection string (expected Name=Value;… pairs such as "
                "DefaultEndpointsProtocol=https;AccountName=…;AccountKey=…)"
            )
        settings[name.strip().lower()] = value.strip()
    if settings.get("usedevelopmentstorage", "").lower() == "true":
        proxy = settings.get("developmentstorageproxyuri", "http://127.0.0.1").rstrip("/")
        return ConnectionString(DEVSTORE_ACCOUNT, DEVSTORE_KEY, None, f"{proxy}:10000/{DEVSTORE_ACCOUNT}")
    account = settings.get("accountname") or None
    key = settings.get("accountkey") or None
    sas = sas_value(settings.get("sharedaccesssignature"))
    endpoint = settings.get("blobendpoint") or None
    if endpoint:
        endpoint = normalise_account_url(endpoint, f"{where}: BlobEndpoint")
    elif account:
        protocol = settings.get("defaultendpointsprotocol", "https").lower() or "https"
        suffix = settings.get("endpointsuffix") or DEFAULT_SUFFIX
        endpoint = f"{protocol}://{account}.blob.{suffix}"
    if account is None and endpoint:
        account = account_of_url(endpoint)
    if endpoint is None:
        raise ConfigError(f"{where} names neither AccountName nor BlobEndpoint")
    if key is None and sas is None:
        raise ConfigError(f"{where} has neither AccountKey nor SharedAccessSignature")
    if key is not None and account is None:
        raise ConfigError(f"{where} has an AccountKey but no AccountName")
    return ConnectionString(account, key, sas, endpoint)


# -- where a URL points -------------------------------------------------------------------------


@dataclass(frozen=True)
class Location:
    """Where an Azure URL points: account (None when the URL has none), container, blob name."""

    url: StorageURL
    account: str | None
    container: str
    blob: str
    endpoint_url: str | None
    """The endpoint the URL itself implies (None for ``abfs://container/path``)."""


def locate(url: StorageURL) -> Location:
    if isinstance(url, str):
        from clearml_core.storage.url import parse_url

        url = parse_url(url)
    host = url.host
    container = url.bucket or ""
    if host and url.scheme == "azure" and path_style(host, url.port):
        account = container
        container, _, blob = url.key.partition("/")
        if not container:
            from clearml_core.storage.url import InvalidURLError

            raise InvalidURLError(
                f"{url} names the account {account!r} but no container; write "
                f"azure://{url.endpoint}/{account}/<container>/<path>"
            )
        return Location(url, account, container, blob, f"http://{url.endpoint}/{account}")
    if not host:
        return Location(url, None, container, url.key, None)
    endpoint_host = host
    if ".dfs." in endpoint_host:
        endpoint_host = endpoint_host.replace(".dfs.", ".blob.", 1)  # ADLS Gen2: same data, Blob API
    netloc = f"{endpoint_host}:{url.port}" if url.port is not None else endpoint_host
    return Location(url, host.split(".", 1)[0], container, url.key, f"https://{netloc}")


# -- entries ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    """One ``sdk.azure.storage.containers`` entry."""

    index: int
    account: str
    container: str | None
    values: Mapping[str, Any]
    connection: ConnectionString | None
    account_url: str | None

    @property
    def name(self) -> str:
        return f"{ENTRIES}[{self.index}]"

    @property
    def where(self) -> str:
        return f"account {self.account}" + (f" container {self.container}" if self.container else "")

    @property
    def rank(self) -> int:
        return 2 if self.container else 1

    def serves(self, account: str | None, container: str) -> bool:
        if account is not None and account.lower() != self.account.lower():
            return False
        if self.container is None:
            return account is not None  # an account-wide entry needs the URL to name that account
        return self.container == container


@dataclass(frozen=True)
class TransferSettings:
    """``sdk.azure.storage`` transfer tuning (ClearML's names where ClearML has them)."""

    max_connections: int = 2
    block_size: int = 4 * MIB
    max_single_put_size: int = 8 * MIB
    max_single_get_size: int = 32 * MIB
    timeout: float = 600
    connect_timeout: float = 20
    max_retries: int = 3
    api_version: str | None = None


class AzureSettings:
    """``sdk.azure.storage`` of one loaded configuration, parsed once."""

    def __init__(self, config: Config) -> None:
        self.entries_origin = config.origin(ENTRIES)
        self.entries: list[Entry] = []
        self.ignored: list[str] = []
        for index, raw in enumerate(config.get_list(ENTRIES)):
            entry = self._entry(index, raw)
            if entry is not None:
                self.entries.append(entry)
        self.transfer = _transfer_settings(config)
        self._first_warning = FirstTime()

    def _entry(self, index: int, raw: Any) -> Entry | None:
        where = f"{source_file(self.entries_origin)}: {ENTRIES}[{index}]"
        if not isinstance(raw, Mapping):
            raise ConfigError(
                f"{where} must be an object {{ account_name: …, account_key: …, container_name: … }}, "
                f"got {type(raw).__name__}"
            )
        own = {str(k): v for k, v in raw.items()}
        connection = None
        conn_text = text_or_none(own.get("connection_string"))
        if conn_text:
            connection = parse_connection_string(conn_text, f"{where}.connection_string")
        account_url = text_or_none(own.get("account_url")) or text_or_none(own.get("endpoint"))
        if account_url:
            account_url = normalise_account_url(account_url, where)
        account = (
            text_or_none(own.get("account_name"))
            or (connection.account_name if connection else None)
            or (account_of_url(account_url) if account_url else None)
        )
        container = text_or_none(own.get("container_name"))
        if container and container.startswith("/"):
            container = container.strip("/") or None
        if not account:
            message = (
                f"{where} names no account (account_name, or a connection_string / account_url that "
                "implies one), so it never applies; add account_name:"
            )
            log.warning(message)
            self.ignored.append(message)
            return None
        return Entry(index, account, container, own, connection, account_url)

    def match(self, location: Location) -> Entry | None:
        """The most specific entry for ``location`` (ties: the first in the list); None if none."""
        best: Entry | None = None
        for entry in self.entries:
            if entry.serves(location.account, location.container) and (
                best is None or entry.rank > best.rank
            ):
                best = entry
        return best

    def entry_source(self, entry: Entry) -> str:
        return f"{source_file(self.entries_origin)}: {entry.name}"

    def warn_unusable(self, entry: Entry) -> None:
        if not self._first_warning(entry.index):
            return
        log.warning(
            "%s (%s) has no account_key, sas_token or connection_string; its account_url applies, "
            "its credentials come from the environment or DefaultAzureCredential. Add account_key "
            "(or sas_token, or connection_string) to use it.",
            self.entry_source(entry),
            entry.where,
        )


def _transfer_settings(config: Config) -> TransferSettings:
    base = TransferSettings()

    def integer(name: str, default: int, minimum: int) -> int:
        value = config.get_int(f"{SECTION}.{name}", default)
        value = default if value is None else value
        if value < minimum:
            raise ConfigError(
                f"{config.origin(SECTION + '.' + name)}: {SECTION}.{name} must be at least {minimum}, "
                f"got {value}"
            )
        return value

    def number(name: str, default: float) -> float:
        value = config.get_float(f"{SECTION}.{name}", default)
        value = default if value is None else value
        if value <= 0:
            raise ConfigError(
                f"{config.origin(SECTION + '.' + name)}: {SECTION}.{name} must be a number of seconds "
                f"above 0, got {value}"
            )
        return value

    block = integer("block_size", base.block_size, 64 * KIB)
    if block > 4000 * MIB:
        raise ConfigError(f"{config.origin(SECTION + '.block_size')}: {SECTION}.block_size is over 4000 MiB")
    return TransferSettings(
        max_connections=integer("max_connections", base.max_connections, 1),
        block_size=block,
        max_single_put_size=integer("max_single_put_size", base.max_single_put_size, 0),
        max_single_get_size=integer("max_single_get_size", base.max_single_get_size, 64 * KIB),
        timeout=number("timeout", base.timeout),
        connect_timeout=number("connect_timeout", base.connect_timeout),
        max_retries=integer("max_retries", base.max_retries, 0),
        api_version=text_or_none(config.get(f"{SECTION}.api_version")),
    )


settings_for = SettingsCache(AzureSettings).get
"""The parsed Azure settings of a configuration (parsed once per loaded configuration)."""


__all__ = [
    "AzureSettings",
    "ConnectionString",
    "Entry",
    "Location",
    "TransferSettings",
    "locate",
    "parse_connection_string",
    "settings_for",
]
