"""The ``gs`` storage driver: google-cloud-storage clients shared per resolved target.

For each URL the driver works out the bucket and key, the matching ``sdk.google.storage`` entry
(its project) and *who* (the ``gs`` credential chain), and reuses one ``storage.Client`` per
distinct (credentials, project, endpoint, pool sizes).

Requests per operation: a small upload is one request (objects up to 8 MiB, also from a stream of
unknown size, which is probed that far); a larger one is a resumable upload in
``upload_chunk_size`` chunks. ``open_read`` is one streaming GET, whatever the size: a reader sees
one generation and holds only the socket's buffer. ``download_file`` is the library's streaming
download (checksum verified), or with ``download_chunk_size`` set, ranged GETs of that size pinned
to the first answer's generation.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from google.api_core import exceptions as gx
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage
from google.cloud.storage.retry import DEFAULT_RETRY

from clearml_core.credentials.chain import Attempt, Credentials, chain_for
from clearml_core.storage.clients import ClientCache
from clearml_core.storage.driver import (
    COPY_CHUNK,
    ByteRange,
    ObjectInfo,
    atomic_file,
    write_atomically,
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
from clearml_core_storage_gcs.errors import MissingCredentialsError, missing_credentials_message, translate
from clearml_core_storage_gcs.resolvers import SCOPES, default_credentials
from clearml_core_storage_gcs.settings import (
    SINGLE_REQUEST_LIMIT,
    GCSSettings,
    Location,
    Transfer,
    emulator_host,
    locate,
    settings_for,
)

if TYPE_CHECKING:
    from clearml_core.config import Config

READ_CHUNK = 8 * 1024 * 1024
_BATCH = 100  # the JSON API's batch limit
_DEFAULT_POOL = 32


# -- clients, shared per resolved target ---------------------------------------------------------


@dataclass(frozen=True, repr=False)
class _ClientKey:
    auth: str
    identity: str | None
    """The key file's path, the key's JSON, or None (ADC, anonymous)."""
    project: str | None
    endpoint: str | None
    pool_connections: int | None
    pool_maxsize: int | None

    def __repr__(self) -> str:  # never show an inline key
        return f"_ClientKey({self.auth!r}, project={self.project!r}, endpoint={self.endpoint!r})"


def google_credentials(key: _ClientKey) -> tuple[Any, str | None]:
    """The google-auth credentials and the project they carry, for a resolved ``auth``."""
    if key.auth == "anonymous":
        return AnonymousCredentials(), None
    if key.auth == "adc":
        found = default_credentials()
        if isinstance(found, str):
            raise MissingCredentialsError(f"application default credentials are gone ({found})")
        return found
    if key.auth == "file":
        with open(str(key.identity), encoding="utf-8") as handle:
            info = json.load(handle)
    else:
        info = json.loads(str(key.identity))
    return _from_info(info)


def _from_info(info: dict[str, Any]) -> tuple[Any, str | None]:
    """Credentials of a key's JSON, by its ``type`` (the generic loader is deprecated by google-auth)."""
    kind = info.get("type")
    project = info.get("project_id") or info.get("quota_project_id")
    if kind == "service_account":
        from google.oauth2 import service_account

        return service_account.Credentials.from_service_account_info(info, scopes=list(SCOPES)), project
    if kind == "authorized_user":
        from google.oauth2 import credentials as user_credentials

        return user_credentials.Credentials.from_authorized_user_info(info, scopes=list(SCOPES)), project
    if kind == "external_account":
        from google.auth import identity_pool

        return identity_pool.Credentials.from_info(info, scopes=list(SCOPES)), project
    if kind == "impersonated_service_account":
        from google.auth import impersonated_credentials

        return impersonated_credentials.Credentials.from_impersonated_service_account_info(
            info, scopes=list(SCOPES)
        ), project
    raise MissingCredentialsError(
        f"a credentials_json key of type {kind!r} is not supported; use a service_account, "
        "authorized_user, external_account or impersonated_service_account key"
    )


class _Clients(ClientCache[_ClientKey, storage.Client]):
    """``storage.Client`` objects, one per :class:`_ClientKey`; safe from many threads."""

    def build(self, key: _ClientKey) -> storage.Client:
        import requests

        credentials, key_project = google_credentials(key)
        options = {"api_endpoint": key.endpoint} if key.endpoint else None
        # A project is needed only to create or list buckets; never let the client go looking for one.
        project = key.project or key_project or "<none>"
        client = storage.Client(project=project, credentials=credentials, client_options=options)
        adapter = requests.adapters.HTTPAdapter(
            pool_connections=key.pool_connections or 10, pool_maxsize=key.pool_maxsize or _DEFAULT_POOL
        )
        client._http.mount("https://", adapter)
        client._http.mount("http://", adapter)
        if getattr(client, "_bucket_metadata_cache", None) is not None:
            # google-cloud-storage >= 3.x fetches each bucket's metadata in a background thread to
            # label trace spans: one more request per bucket, refused on public buckets. Not wanted.
            client._bucket_metadata_cache = None
        return client


CLIENTS = _Clients()


def reset_clients() -> None:
    CLIENTS.clear()


def _tried(attempts: list[Attempt]) -> str:
    return "; ".join(f"{a.resolver}: {a.note}" if a.note else a.resolver for a in attempts if not a.answered)


@dataclass(frozen=True)
class Target(ObjectTarget):
    """Everything needed to send requests for one URL."""

    location: Location
    credentials: Credentials
    client_key: _ClientKey
    transfer: Transfer
    tried: str

    @property
    def bucket_name(self) -> str:
        return self.location.bucket

    @property
    def key(self) -> str:
        return self.location.key

    @property
    def client(self) -> storage.Client:
        return CLIENTS.client(self.client_key)

    def bucket(self) -> Any:
        return self.client.bucket(self.bucket_name)

    def blob(self, chunk_size: int | None = None, generation: int | None = None) -> Any:
        return self.bucket().blob(self.key, chunk_size=chunk_size, generation=generation)

    @property
    def retry(self) -> Any:
        return (
            DEFAULT_RETRY.with_timeout(self.transfer.retry_timeout) if self.transfer.retry_timeout else None
        )

    @property
    def timeout(self) -> Any:
        return self.transfer.timeout

    translate_error = staticmethod(translate)

    def error_context(self) -> dict[str, Any]:
        return {
            "endpoint": self.client_key.endpoint,
            "principal": self.credentials.get("principal"),
            "auth": self.credentials.get("auth"),
            "tried": self.tried,
            "bucket": self.bucket_name,
        }


class _Ranged(io.RawIOBase):
    """An object read in ranged GETs of ``chunk`` bytes, all of the first answer's generation."""

    def __init__(
        self, target: Target, first: bytes, start: int, stop: int | None, chunk: int, generation: Any
    ):
        self._target = target
        self._buffer = memoryview(first)
        self._next = start + len(first)
        self._stop = stop
        self._chunk = chunk
        self._generation = int(generation) if generation else None
        self._done = len(first) < chunk or (stop is not None and self._next >= stop)

    def readable(self) -> bool:
        return True

    def _fetch(self) -> None:
        end = self._next + self._chunk
        if self._stop is not None:
            end = min(end, self._stop)
        blob = self._target.blob(generation=self._generation)
        try:
            data = blob.download_as_bytes(
                start=self._next,
                end=end - 1,
                checksum=None,
                timeout=self._target.timeout,
                retry=self._target.retry,
            )
        except gx.RequestRangeNotSatisfiable:
            data = b""
        except gx.NotFound as error:
            raise self._target.fail(error, "read (the object changed while it was read)") from None
        except Exception as error:
            raise self._target.fail(error, "read") from None
        if self._generation and blob.generation and int(blob.generation) != self._generation:
            # a server that ignored the generation asked for: never mix two versions
            raise TransientStorageError(
                f"cannot read {self._target.location.url}: the object changed while it was read"
            )
        requested = end - self._next
        self._buffer = memoryview(data)
        self._next += len(data)
        self._done = len(data) < requested or (self._stop is not None and self._next >= self._stop)

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        if not self._buffer:
            if self._done:
                return 0
            self._fetch()
            if not self._buffer:
                return 0
        count = min(len(view), len(self._buffer))
        view[:count] = self._buffer[:count]
        self._buffer = self._buffer[count:]
        return count


def _response_reader(response: Any, target: Target) -> SDKReader:
    """A streaming ``requests`` response as a raw stream (None: an empty range)."""
    if response is None:
        return SDKReader(lambda _size: b"", lambda error: target.fail(error, "read"))
    return SDKReader(
        lambda size: response.raw.read(size, decode_content=True),
        lambda error: target.fail(error, "read"),
        response.close,
    )


class GCSDriver(ObjectStoreDriver[Target]):
    """Google Cloud Storage and emulators that speak its JSON API."""

    capabilities = OBJECT_STORE_CAPABILITIES

    def __init__(self, config: Config, url: StorageURL) -> None:
        super().__init__(config, url)
        self._settings: GCSSettings = settings_for(config)

    # -- resolution -----------------------------------------------------------------------------
    def target(self, url: StorageURL) -> Target:
        location = locate(url)
        entry = self._settings.match(location)
        scope = (location.bucket, entry.index if entry else None)

        def resolve() -> Target:
            resolution = chain_for(url.scheme).explain(url, self.config)
            credentials = resolution.credentials
            tried = _tried(resolution.attempts)
            if credentials is None:
                raise MissingCredentialsError(missing_credentials_message(url, tried, location.bucket))
            auth = str(credentials.get("auth"))
            identity = (
                credentials.get("credentials_file") if auth == "file" else credentials.get("credential")
            )
            transfer = self._settings.transfer
            client_key = _ClientKey(
                auth=auth,
                identity=identity if auth in ("file", "inline") else None,
                project=self._settings.project_for(entry, os.environ),
                endpoint=emulator_host(),
                pool_connections=transfer.pool_connections,
                pool_maxsize=transfer.pool_maxsize,
            )
            return Target(location, credentials, client_key, transfer, tried)

        cached = self.scopes.get(scope, resolve)
        return cached if cached.location == location else replace(cached, location=location)

    @classmethod
    def describe(cls, url: StorageURL, config: Config) -> dict[str, Any]:
        """The fields ``storage resolve`` prints for a ``gs://`` URL (never a secret; no request sent)."""
        settings = settings_for(config)
        location = locate(url)
        entry = settings.match(location)
        resolution = chain_for(url.scheme).explain(url, config)
        credentials = resolution.credentials
        transfer = settings.transfer
        endpoint = emulator_host()
        return {
            "backend": "gs",
            "resolver": resolution.resolver,
            "source": resolution.source,
            "bucket": location.bucket,
            "key": location.key,
            "endpoint_url": endpoint,
            "endpoint_source": "env STORAGE_EMULATOR_HOST" if endpoint else None,
            "auth": credentials.get("auth") if credentials is not None else None,
            "credentials_file": credentials.get("credentials_file") if credentials is not None else None,
            "principal": credentials.get("principal") if credentials is not None else None,
            "project": settings.project_for(entry, os.environ),
            "entry": entry.name if entry is not None else None,
            "upload_chunk_size": transfer.upload_chunk_size,
            "download_chunk_size": transfer.download_chunk_size,
            "timeout": transfer.timeout,
        }

    # -- reads ---------------------------------------------------------------------------------
    def open_read(self, url: StorageURL, byte_range: ByteRange | None = None) -> BinaryIO:
        target = self.object_target(url)
        if self.empty_range(url, byte_range):
            return io.BytesIO(b"")
        start, stop = byte_range if byte_range is not None else (0, None)
        return io.BufferedReader(_response_reader(self._media_get(target, start, stop), target), COPY_CHUNK)

    @staticmethod
    def _media_get(target: Target, start: int, stop: int | None) -> Any:
        """One streaming GET of the object's bytes (the JSON API's media download), range optional.

        One request however large the object: a reader sees one generation, and holds only the
        socket's buffer in memory. Raises at once (404 → ObjectNotFoundError), not on the first read.
        """
        client = target.client
        url = f"{client.api_endpoint}/download/storage/v1{target.blob().path}?alt=media"
        headers = {}
        if start or stop is not None:
            headers["Range"] = f"bytes={start}-{'' if stop is None else stop - 1}"

        def get() -> Any:
            response = client._http.get(url, headers=headers, stream=True, timeout=target.timeout)
            if response.status_code >= 400 and response.status_code != 416:
                try:
                    raise gx.from_http_response(response)
                finally:
                    response.close()
            return response

        try:
            response = target.retry(get)() if target.retry else get()
        except Exception as error:
            raise target.fail(error, "read") from None
        if response.status_code == 416:  # the range starts past the end of an existing object
            response.close()
            return None
        return response

    def _ranged_download(self, target: Target, destination: Path) -> int:
        """``download_chunk_size`` ranges one after the other, pinned to the first one's generation."""
        chunk = int(target.transfer.download_chunk_size or READ_CHUNK)
        blob = target.blob()
        try:
            first = blob.download_as_bytes(
                start=0, end=chunk - 1, checksum=None, timeout=target.timeout, retry=target.retry
            )
        except gx.RequestRangeNotSatisfiable:
            first = b""
        except Exception as error:
            raise target.fail(error, "download") from None
        reader = _Ranged(target, first, 0, None, chunk, blob.generation)
        return write_atomically(destination, io.BufferedReader(reader, COPY_CHUNK))

    def download_object(self, target: Target, url: StorageURL, destination: Path) -> int:
        if target.transfer.download_chunk_size:
            return self._ranged_download(target, destination)
        blob = target.blob()
        with atomic_file(destination) as out:
            try:
                blob.download_to_file(out, timeout=target.timeout, retry=target.retry)
            except Exception as error:
                raise target.fail(error, "download") from None
            return out.tell()

    def stat(self, url: StorageURL) -> ObjectInfo:
        target = self.object_target(url)
        try:
            blob = target.bucket().get_blob(target.key, timeout=target.timeout, retry=target.retry)
        except Exception as error:
            raise target.fail(error, "stat") from None
        if blob is None:
            raise ObjectNotFoundError(f"cannot stat {url}: no such object")
        return object_info(
            url,
            size=blob.size,
            modified=blob.updated,
            etag=blob.etag,
            content_type=blob.content_type,
            metadata=blob.metadata,
        )

    def list(self, url: StorageURL, *, recursive: bool = False) -> Iterator[ObjectInfo]:
        folder = url.as_folder()
        target = self.target(folder)
        prefix = target.key
        listing = KeyListing(folder, prefix)
        try:
            blobs = target.client.list_blobs(
                target.bucket_name,
                prefix=prefix or None,
                delimiter=None if recursive else "/",
                timeout=target.timeout,
                retry=target.retry,
            )
            for page in blobs.pages:
                for blob in page:
                    if blob.name.endswith("/"):
                        continue  # a folder placeholder (the console's "create folder"), not an object
                    yield listing.object(blob.name, size=blob.size, modified=blob.updated, etag=blob.etag)
                for sub in getattr(page, "prefixes", ()):
                    yield listing.sub_folder(sub)
        except StorageError:
            raise
        except Exception as error:
            raise target.fail(error, "list") from None

    # -- writes --------------------------------------------------------------------------------
    def single_request_limit(self, target: Target) -> int:
        return SINGLE_REQUEST_LIMIT

    def upload_object(
        self,
        target: Target,
        data: bytes | BinaryIO,
        size: int | None,
        content_type: str | None,
        extra: Mapping[str, str] | None,
    ) -> None:
        if isinstance(data, bytes):
            data = io.BytesIO(data)  # upload_from_file takes a file
        blob = target.blob(chunk_size=target.transfer.upload_chunk_size)
        if extra:
            blob.metadata = {str(k): str(v) for k, v in extra.items()}
        try:
            blob.upload_from_file(
                data,
                size=size,
                content_type=content_type,
                rewind=False,
                timeout=target.timeout,
                retry=target.retry,
            )
        except Exception as error:
            raise target.fail(error, "upload") from None

    def delete(self, url: StorageURL) -> None:
        target = self.object_target(url)
        try:
            target.blob().delete(timeout=target.timeout, retry=target.retry)
        except Exception as error:
            raise target.fail(error, "delete") from None

    def delete_folder(self, url: StorageURL) -> int:
        folder = url.as_folder()
        target = self.target(folder)
        names = [self.target(info.url).key for info in self.list(folder, recursive=True)]
        bucket = target.bucket()
        count = 0
        for start in range(0, len(names), _BATCH):
            batch_names = names[start : start + _BATCH]
            try:
                with target.client.batch(raise_exception=False) as batch:
                    for name in batch_names:
                        bucket.blob(name).delete(timeout=target.timeout)
            except Exception as error:
                raise target.fail(error, "delete the folder") from None
            for name, response in zip(batch_names, batch._responses, strict=False):
                status = int(getattr(response, "status_code", 0) or 0)
                if 200 <= status < 300:
                    count += 1
                elif status != 404:
                    raise StorageError(f"cannot delete {name!r} in the folder {folder}: answered {status}")
        return count

    def copy_object(self, source: Target, target: Target, src: StorageURL, dst: StorageURL) -> bool:
        if source.client_key != target.client_key:
            return False  # two sets of credentials: the bytes pass through this machine
        destination = target.blob()
        token = None
        try:
            while True:  # a rewrite may need several calls for a large object across locations
                token, _done, _total = destination.rewrite(
                    source.blob(), token=token, timeout=target.timeout, retry=target.retry
                )
                if token is None:
                    return True
        except Exception as error:
            raise source.fail(error, f"copy to {dst}") from None

    # -- presigned URLs ------------------------------------------------------------------------
    def presign(self, url: StorageURL, *, method: str = "get", expires: int = 3600) -> str:
        method = method.lower()
        if method not in ("get", "put"):
            raise UnsupportedOperationError(f"presigned GCS URLs are for get or put, not {method!r}")
        if not 0 < expires <= 7 * 24 * 3600:
            raise UnsupportedOperationError(
                f"presigned GCS URLs expire after 1 second to 7 days (604800 s), not {expires} s"
            )
        target = self.object_target(url)
        if target.client_key.auth == "anonymous":
            raise UnsupportedOperationError(
                f"cannot presign {url}: the requests go without credentials; signing needs a "
                "service-account key (credentials_json, GOOGLE_APPLICATION_CREDENTIALS) or a service "
                "account from the metadata server"
            )
        credentials, _project = google_credentials(target.client_key)
        options: dict[str, Any] = {}
        if not hasattr(credentials, "sign_bytes") or not getattr(credentials, "signer_email", None):
            # metadata-server / impersonated credentials: Google signs for us (IAM signBlob)
            import google.auth.transport.requests

            email = getattr(credentials, "service_account_email", None)
            if not email:
                raise UnsupportedOperationError(
                    f"cannot presign {url}: {self._describe_auth(target)} cannot sign; use a service-account "
                    "key (credentials_json or GOOGLE_APPLICATION_CREDENTIALS)"
                )
            try:
                credentials.refresh(google.auth.transport.requests.Request())
            except Exception as error:
                raise target.fail(error, "presign") from None
            options = {"service_account_email": email, "access_token": credentials.token}
        try:
            return str(
                target.blob().generate_signed_url(
                    version="v4",
                    expiration=dt.timedelta(seconds=expires),
                    method=method.upper(),
                    credentials=credentials,
                    api_access_endpoint=target.client_key.endpoint,
                    **options,
                )
            )
        except Exception as error:
            raise target.fail(error, "presign") from None

    # -- helpers -------------------------------------------------------------------------------
    @staticmethod
    def _describe_auth(target: Target) -> str:
        return f"the {target.credentials.get('auth')} credentials ({target.credentials.source})"

    def check_object(self, target: Target) -> None:
        if not target.key:
            raise ObjectNotFoundError(
                f"{target.location.url} names the bucket {target.bucket_name!r}, not an object in it"
            )


__all__ = ["CLIENTS", "GCSDriver", "google_credentials", "reset_clients"]
