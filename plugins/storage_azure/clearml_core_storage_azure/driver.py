"""The ``azure`` storage driver: azure-storage-blob clients shared per resolved target.

For each URL the driver works out *where* (account, container, blob, endpoint —
:mod:`.settings`) and *who* (the Azure credential chain: clearml.conf, environment,
DefaultAzureCredential, and any third-party resolver between them), and reuses one
``BlobServiceClient`` per distinct (endpoint, credentials, transfer settings).

Requests per operation: a small upload is one Put Blob, a small download one GET (its first
``max_single_get_size`` bytes; a larger blob follows in ``block_size`` ranges, ``max_connections``
at a time, pinned to the first answer's ETag). Larger uploads are staged in ``block_size`` blocks
``max_connections`` at a time and committed at once, so readers never see half a blob; nothing is
ever read whole into memory (a stream of unknown size is probed up to ``max_single_put_size``).
"""

from __future__ import annotations

import builtins
import datetime as dt
import io
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from azure.core.exceptions import HttpResponseError
from azure.storage.blob import BlobServiceClient, ContentSettings, ExponentialRetry

from clearml_core.credentials.chain import Credentials, Resolution, chain_for
from clearml_core.errors import UserError
from clearml_core.storage.clients import ClientCache
from clearml_core.storage.driver import (
    COPY_CHUNK,
    ByteRange,
    ObjectInfo,
    atomic_file,
)
from clearml_core.storage.errors import (
    ObjectNotFoundError,
    StorageError,
    TransientStorageError,
    UnsupportedOperationError,
)
from clearml_core.storage.objectstore import (
    OBJECT_STORE_CAPABILITIES,
    KeyListing,
    ObjectStoreDriver,
    ObjectTarget,
    SDKReader,
    object_info,
)
from clearml_core.storage.url import StorageURL
from clearml_core_storage_azure.errors import (
    MissingCredentialsError,
    error_code,
    missing_credentials_message,
    status_of,
    translate,
)
from clearml_core_storage_azure.settings import (
    DEFAULT_SUFFIX,
    AzureSettings,
    Entry,
    Location,
    TransferSettings,
    locate,
    settings_for,
)

if TYPE_CHECKING:
    from clearml_core.config import Config

_DELETE_BATCH = 256  # the Blob Batch API's limit
_POOL_SIZE = 64


# -- clients, shared per resolved target ---------------------------------------------------------


@dataclass(frozen=True, repr=False)
class _ClientKey:
    account_url: str
    auth: str
    account_name: str | None
    secret: str | None
    transfer: TransferSettings

    def __repr__(self) -> str:  # never show the secret
        return f"_ClientKey({self.account_url!r}, {self.auth!r}, {self.account_name!r})"


class _Clients(ClientCache[_ClientKey, BlobServiceClient]):
    """``BlobServiceClient`` objects, one per :class:`_ClientKey`; safe from many threads."""

    def __init__(self) -> None:
        super().__init__()
        self._default_credential: Any = None

    def build(self, key: _ClientKey) -> BlobServiceClient:
        import requests
        from azure.core.pipeline.transport import RequestsTransport

        settings = key.transfer
        credential: Any
        if key.auth == "default_credential":
            if self._default_credential is None:
                from azure.identity import DefaultAzureCredential

                self._default_credential = DefaultAzureCredential()
            credential = self._default_credential
        elif key.auth == "sas" or (key.auth == "connection_string" and key.account_name is None):
            credential = key.secret
        elif key.secret is not None and key.account_name is not None:
            from azure.core.credentials import AzureNamedKeyCredential

            credential = AzureNamedKeyCredential(key.account_name, key.secret)
        else:
            credential = key.secret
        session = requests.Session()
        adapter = requests.adapters.HTTPAdapter(pool_connections=8, pool_maxsize=_POOL_SIZE)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        options: dict[str, Any] = {
            "max_single_put_size": settings.max_single_put_size,
            "max_block_size": settings.block_size,
            "max_single_get_size": settings.max_single_get_size,
            "max_chunk_get_size": settings.block_size,
            "retry_policy": ExponentialRetry(
                initial_backoff=1, increment_base=2, retry_total=settings.max_retries, random_jitter_range=1
            ),
            # the SDK's own transport reads responses in 4 MiB blocks; requests' default is 4 KiB
            # (a transport given to the client takes its timeouts from here, not from the client)
            "transport": RequestsTransport(
                session=session,
                session_owner=True,
                connection_data_block_size=4 * 1024 * 1024,
                connection_timeout=settings.connect_timeout,
                read_timeout=settings.timeout,
            ),
        }
        if settings.api_version:
            options["api_version"] = settings.api_version
        try:
            return BlobServiceClient(key.account_url, credential=credential, **options)
        except ValueError as error:
            raise UserError(f"the Azure client for {key.account_url} cannot be built: {error}") from None


CLIENTS = _Clients()
"""The process-wide client cache (tests count its entries; :func:`reset_clients` empties it)."""


def reset_clients() -> None:
    CLIENTS.clear()


# -- one resolved target -------------------------------------------------------------------------


@dataclass(frozen=True)
class Target(ObjectTarget):
    """Everything needed to send requests for one URL."""

    location: Location
    account: str | None
    endpoint_url: str
    endpoint_source: str
    credentials: Credentials
    client_key: _ClientKey

    @property
    def container(self) -> str:
        return self.location.container

    @property
    def blob(self) -> str:
        return self.location.blob

    @property
    def auth(self) -> str:
        return str(self.credentials.get("auth", ""))

    @property
    def service(self) -> BlobServiceClient:
        return CLIENTS.client(self.client_key)

    def container_client(self) -> Any:
        return self.service.get_container_client(self.container)

    def blob_client(self) -> Any:
        return self.service.get_blob_client(self.container, self.blob)

    translate_error = staticmethod(translate)

    def error_context(self) -> dict[str, Any]:
        return {
            "endpoint": self.endpoint_url,
            "account": self.account,
            "container": self.container,
            "auth": self.auth,
        }


def endpoint_for(
    location: Location, entry: Entry | None, credentials: Credentials | None
) -> tuple[str | None, str | None]:
    """The account URL requests go to, and where it was set: entry, connection string, URL, account."""
    if entry is not None and entry.account_url:
        return entry.account_url, entry.name
    if credentials is not None and credentials.get("account_url"):
        return str(credentials["account_url"]), credentials.source
    if location.endpoint_url:
        return location.endpoint_url, "the URL"
    account = credentials.get("account_name") if credentials is not None else None
    if account:
        return f"https://{account}.blob.{DEFAULT_SUFFIX}", f"account {account}"
    return None, None


def _is_folder_marker(properties: Any) -> bool:
    """ADLS Gen2 directories show in Blob listings as empty blobs marked ``hdi_isfolder``."""
    metadata = getattr(properties, "metadata", None) or {}
    return str(metadata.get("hdi_isfolder", "")).lower() == "true"


class AzureBlobDriver(ObjectStoreDriver[Target]):
    """Azure Blob Storage (block blobs), Azurite and ADLS Gen2 accounts through the Blob API."""

    capabilities = OBJECT_STORE_CAPABILITIES

    def __init__(self, config: Config, url: StorageURL) -> None:
        super().__init__(config, url)
        self._settings: AzureSettings = settings_for(config)

    # -- resolution -----------------------------------------------------------------------------
    def target(self, url: StorageURL) -> Target:
        location = locate(url)
        entry = self._settings.match(location)
        scope = (location.account, location.container, location.endpoint_url, entry.index if entry else None)

        def resolve() -> Target:
            resolution = chain_for(url.scheme).explain(url, self.config)
            credentials = resolution.credentials
            if credentials is None:
                raise MissingCredentialsError(
                    missing_credentials_message(
                        url, resolution.attempts, location.account, location.container
                    )
                )
            account = location.account or credentials.get("account_name")
            endpoint, source = endpoint_for(location, entry, credentials)
            if endpoint is None or source is None:
                raise UserError(
                    f"{url} names no storage account: write "
                    f"{url.scheme}://{location.container}@<account>.blob.core.windows.net/{location.blob}, "
                    "or set AZURE_STORAGE_ACCOUNT, or give the entry of the container an account_name"
                )
            auth = str(credentials.get("auth", ""))
            secret = credentials.get("account_key") or credentials.get("sas_token")
            client_key = _ClientKey(
                account_url=endpoint,
                auth="sas" if auth == "connection_string" and "account_key" not in credentials else auth,
                account_name=credentials.get("account_name") or account,
                secret=secret,
                transfer=self._settings.transfer,
            )
            return Target(location, account, endpoint, source, credentials, client_key)

        cached = self.scopes.get(scope, resolve)
        return cached if cached.location.url == url else replace(cached, location=location)

    @classmethod
    def describe(cls, url: StorageURL, config: Config) -> dict[str, Any]:
        """The fields ``storage resolve`` prints for an Azure URL (never a secret; no request sent)."""
        settings = settings_for(config)
        location = locate(url)
        entry = settings.match(location)
        resolution: Resolution = chain_for(url.scheme).explain(url, config)
        credentials = resolution.credentials
        endpoint, source = endpoint_for(location, entry, credentials)
        transfer = settings.transfer
        return {
            "backend": "azure",
            "resolver": resolution.resolver,
            "source": resolution.source,
            "account": location.account or (credentials.get("account_name") if credentials else None),
            "container": location.container,
            "blob": location.blob,
            "endpoint_url": endpoint,
            "endpoint_source": source,
            "auth": credentials.get("auth") if credentials is not None else None,
            "entry": entry.name if entry is not None else None,
            "max_connections": transfer.max_connections,
            "block_size": transfer.block_size,
            "timeout": transfer.timeout,
        }

    # -- reads ---------------------------------------------------------------------------------
    def open_read(self, url: StorageURL, byte_range: ByteRange | None = None) -> BinaryIO:
        target = self.object_target(url)
        if self.empty_range(url, byte_range):
            return io.BytesIO(b"")
        offset: int | None = None
        length: int | None = None
        if byte_range is not None:
            start, stop = byte_range
            offset, length = start, (None if stop is None else stop - start)
        blob = target.blob_client()
        # One streaming GET through the SDK's own generated operation: a reader sees one version of
        # the blob however long it reads, and holds only the socket's buffer in memory.
        stream = getattr(getattr(getattr(blob, "_client", None), "blob", None), "download", None)
        try:
            chunks: Iterator[bytes]
            if stream is not None:
                header = None
                if offset is not None:
                    header = f"bytes={offset}-{'' if length is None else offset + length - 1}"
                chunks = iter(stream(range=header))
            else:  # pragma: no cover - an SDK that moved it: its chunked downloader (ETag-pinned)
                chunks = blob.download_blob(offset=offset, length=length, max_concurrency=1).chunks()
        except Exception as error:
            if status_of(error) == 416:
                return io.BytesIO(b"")  # the range starts past the end of an existing blob
            raise target.fail(error, "read") from None
        return io.BufferedReader(
            SDKReader.from_chunks(chunks, lambda error: target.fail(error, "read")), COPY_CHUNK
        )

    def download_object(self, target: Target, url: StorageURL, destination: Path) -> int:
        try:
            downloader = target.blob_client().download_blob(
                max_concurrency=self._settings.transfer.max_connections
            )
        except Exception as error:
            raise target.fail(error, "download") from None
        with atomic_file(destination) as out:
            try:
                return int(downloader.readinto(out))
            except Exception as error:
                raise target.fail(error, "download") from None

    def stat(self, url: StorageURL) -> ObjectInfo:
        target = self.object_target(url)
        try:
            properties = target.blob_client().get_blob_properties()
        except Exception as error:
            raise target.fail(error, "stat") from None
        settings = getattr(properties, "content_settings", None)
        return object_info(
            url,
            size=properties.size,
            modified=properties.last_modified,
            etag=properties.etag,
            content_type=getattr(settings, "content_type", None),
            metadata=properties.metadata,
        )

    def list(self, url: StorageURL, *, recursive: bool = False) -> Iterator[ObjectInfo]:
        folder = url.as_folder()
        target = self.target(folder)
        prefix = target.blob
        listing = KeyListing(folder, prefix)
        container = target.container_client()
        try:
            if recursive:
                items: Any = container.list_blobs(name_starts_with=prefix or None, include=["metadata"])
            else:
                items = container.walk_blobs(name_starts_with=prefix or None, delimiter="/")
            for item in items:
                name = str(item.name)
                if not hasattr(item, "size"):  # a BlobPrefix: one sub-folder
                    yield listing.sub_folder(name)
                    continue
                if name.endswith("/") or (recursive and _is_folder_marker(item)):
                    continue
                yield listing.object(name, size=item.size, modified=item.last_modified, etag=item.etag)
        except StorageError:
            raise
        except Exception as error:
            raise target.fail(error, "list") from None

    # -- writes --------------------------------------------------------------------------------
    def single_request_limit(self, target: Target) -> int:
        return self._settings.transfer.max_single_put_size

    def upload_object(
        self,
        target: Target,
        data: bytes | BinaryIO,
        size: int | None,
        content_type: str | None,
        extra: Mapping[str, str] | None,
    ) -> None:
        try:
            target.blob_client().upload_blob(
                data,
                length=size,
                overwrite=True,
                content_settings=ContentSettings(content_type=content_type) if content_type else None,
                metadata={str(k): str(v) for k, v in extra.items()} if extra else None,
                max_concurrency=self._settings.transfer.max_connections,
            )
        except Exception as error:
            raise target.fail(error, "upload") from None

    def delete(self, url: StorageURL) -> None:
        target = self.object_target(url)
        try:
            target.blob_client().delete_blob(delete_snapshots="include")
        except Exception as error:
            raise target.fail(error, "delete") from None

    def delete_folder(self, url: StorageURL) -> int:
        folder = url.as_folder()
        target = self.target(folder)
        names = [self.target(info.url).blob for info in self.list(folder, recursive=True)]
        container = target.container_client()
        count = 0
        for start in range(0, len(names), _DELETE_BATCH):
            batch = names[start : start + _DELETE_BATCH]
            try:
                responses = list(
                    container.delete_blobs(*batch, delete_snapshots="include", raise_on_any_failure=False)
                )
            except HttpResponseError as error:
                if status_of(error) in (401, 403, 404):
                    raise target.fail(error, "delete the folder") from None
                count += self._delete_one_by_one(target, batch)  # no Blob Batch API here
                continue
            except Exception as error:
                raise target.fail(error, "delete the folder") from None
            for name, response in zip(batch, responses, strict=False):
                status = int(getattr(response, "status_code", 0) or 0)
                if 200 <= status < 300:
                    count += 1
                elif status != 404:
                    raise StorageError(
                        f"cannot delete {name!r} in the folder {folder}: {target.endpoint_url} answered {status}"
                    )
        return count

    def _delete_one_by_one(self, target: Target, names: builtins.list[str]) -> int:
        count = 0
        container = target.container_client()
        for name in names:
            try:
                container.delete_blob(name, delete_snapshots="include")
                count += 1
            except Exception as error:
                if status_of(error) != 404:
                    raise target.fail(error, "delete the folder") from None
        return count

    def copy_object(self, source: Target, target: Target, src: StorageURL, dst: StorageURL) -> bool:
        if source.client_key != target.client_key:
            return False  # two accounts or two sets of credentials: bytes pass through here
        destination = target.blob_client()
        try:
            started = destination.start_copy_from_url(source.blob_client().url)
        except Exception as error:
            if status_of(error) in (401, 403) and error_code(error) == "CannotVerifyCopySource":
                return False  # the source needs its own authorisation (OAuth): stream it
            raise source.fail(error, f"copy to {dst}") from None
        status = str(started.get("copy_status") or "")
        deadline = time.monotonic() + self._settings.transfer.timeout
        while status == "pending":
            if time.monotonic() > deadline:
                raise TransientStorageError(
                    f"cannot copy {src} to {dst}: the server-side copy did not finish"
                )
            time.sleep(0.2)
            try:
                status = str(destination.get_blob_properties().copy.status or "")
            except Exception as error:
                raise target.fail(error, f"copy from {src} to") from None
        if status not in ("success", ""):
            raise StorageError(f"cannot copy {src} to {dst}: the server-side copy ended {status}")
        return True

    # -- presigned URLs ------------------------------------------------------------------------
    def presign(self, url: StorageURL, *, method: str = "get", expires: int = 3600) -> str:
        from azure.storage.blob import BlobSasPermissions, generate_blob_sas

        method = method.lower()
        if method not in ("get", "put"):
            raise UnsupportedOperationError(f"presigned Azure URLs are for get or put, not {method!r}")
        if not 0 < expires <= 7 * 24 * 3600:
            raise UnsupportedOperationError(
                f"presigned Azure URLs here expire after 1 second to 7 days (604800 s), not {expires} s"
            )
        target = self.object_target(url)
        now = dt.datetime.now(dt.timezone.utc)
        start, expiry = now - dt.timedelta(minutes=5), now + dt.timedelta(seconds=expires)
        permission = (
            BlobSasPermissions(read=True) if method == "get" else BlobSasPermissions(create=True, write=True)
        )
        signing: dict[str, Any]
        if target.client_key.auth in ("account_key", "connection_string") and target.client_key.secret:
            signing = {"account_key": target.client_key.secret}
        elif target.client_key.auth == "default_credential":
            try:
                key = target.service.get_user_delegation_key(start, expiry)
            except Exception as error:
                raise target.fail(error, "get a user delegation key to presign") from None
            signing = {"user_delegation_key": key}
        else:
            raise UnsupportedOperationError(
                f"cannot presign {url}: the credentials in use are a SAS token; a new SAS needs the "
                "account key (account_key / connection string) or DefaultAzureCredential"
            )
        token = generate_blob_sas(
            account_name=str(target.client_key.account_name),
            container_name=target.container,
            blob_name=target.blob,
            permission=permission,
            expiry=expiry,
            start=start,
            **signing,
        )
        return f"{target.blob_client().url}?{token}"

    # -- helpers -------------------------------------------------------------------------------
    def check_object(self, target: Target) -> None:
        if not target.blob:
            raise ObjectNotFoundError(
                f"{target.location.url} names the container {target.container!r}, not a blob in it"
            )


__all__ = ["CLIENTS", "AzureBlobDriver", "endpoint_for", "reset_clients"]
