"""The ``s3`` storage driver: boto3 clients shared per resolved target, one request per small object.

For each URL the driver works out *where* (endpoint, bucket, key — :mod:`.settings`) and *who*
(the ``s3`` credential chain: clearml.conf, environment, boto3's chain, and any third-party
resolver between them), and reuses one boto3 client per distinct (credentials, endpoint, region,
TLS, client options): two buckets with different keys never share a client, and a thousand
objects under one bucket never build a second one.

Requests per operation: a small upload is one PUT, a small download one GET (the first GET asks
for the first part's byte range, so a large object is detected without a HEAD and its remaining
parts are fetched in parallel, pinned to the first answer's ETag). Large uploads go through
s3transfer's multipart upload with ``sdk.aws.boto3`` concurrency, threshold and part size.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import boto3
import botocore.config
import botocore.exceptions
from boto3.s3.transfer import TransferConfig
from s3transfer.manager import TransferManager

from clearml_core.config.redact import mask_access_key
from clearml_core.credentials.chain import Credentials, Resolution, chain_for
from clearml_core.errors import ConfigError
from clearml_core.storage.clients import ClientCache
from clearml_core.storage.driver import (
    COPY_CHUNK,
    ByteRange,
    ObjectInfo,
    atomic_file,
    guess_content_type,
    write_atomically,
)
from clearml_core.storage.errors import (
    ObjectNotFoundError,
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
from clearml_core.storage.streams import read_upto
from clearml_core.storage.url import StorageURL
from clearml_core_storage_s3.errors import MissingCredentialsError, translate
from clearml_core_storage_s3.settings import (
    ENTRIES,
    ENV_KEY,
    ENV_PROFILE,
    ENV_SECRET,
    SECTION,
    Boto3Settings,
    Location,
    Options,
    S3Settings,
    settings_for,
)

if TYPE_CHECKING:
    from clearml_core.config import Config

MAX_SINGLE_PUT = 5 * 1024**3
_DELETE_BATCH = 1000


# -- clients, shared per resolved target ---------------------------------------------------------


@dataclass(frozen=True)
class _ClientKey:
    key: str | None
    secret: str | None
    token: str | None
    profile: str | None
    chain: bool
    region: str | None
    endpoint_url: str | None
    verify: bool | str | None
    boto3: Boto3Settings
    anonymous: bool = False
    """Unsigned requests: a public bucket, read without any credentials."""


class _Clients(ClientCache[_ClientKey, Any]):
    """boto3 clients and transfer managers, one per :class:`_ClientKey`; safe from many threads."""

    def __init__(self) -> None:
        super().__init__()
        self._managers: dict[tuple[_ClientKey, bool], TransferManager] = {}

    def build(self, key: _ClientKey) -> Any:
        # boto3 sessions are not thread-safe; clients are. Built under the lock.
        return _build_client(key)

    def release(self, client: Any) -> None:
        """A boto3 client is dropped, not closed (the transfer managers hold the threads)."""

    def manager(self, key: _ClientKey, multipart: bool) -> TransferManager:
        client = self.client(key)
        with self._lock:
            manager = self._managers.get((key, multipart))
            if manager is None:
                manager = self._managers[(key, multipart)] = TransferManager(
                    client, transfer_config(key.boto3, multipart)
                )
            return manager

    def clear(self) -> None:
        with self._lock:
            managers = list(self._managers.values())
            self._managers.clear()
        super().clear()
        for manager in managers:
            with contextlib.suppress(Exception):
                manager.shutdown()


CLIENTS = _Clients()
"""The process-wide client cache (tests count its entries; :func:`reset_clients` empties it)."""


def reset_clients() -> None:
    CLIENTS.clear()


def transfer_config(settings: Boto3Settings, multipart: bool) -> TransferConfig:
    if not multipart:
        return TransferConfig(multipart_threshold=MAX_SINGLE_PUT, use_threads=False)
    return TransferConfig(
        multipart_threshold=settings.multipart_threshold,
        multipart_chunksize=settings.multipart_chunksize,
        max_concurrency=settings.max_multipart_concurrency,
        use_threads=True,
    )


def _build_client(key: _ClientKey) -> Any:
    settings = key.boto3
    s3_options: dict[str, Any] = {"addressing_style": settings.addressing_style}
    s3_options.update({name: json.loads(value) for name, value in settings.s3_options})
    options: dict[str, Any] = {
        "max_pool_connections": settings.pool_connections,
        "connect_timeout": settings.connect_timeout,
        "read_timeout": settings.read_timeout,
        "retries": {"total_max_attempts": settings.max_attempts, "mode": settings.retry_mode},
        "s3": s3_options,
    }
    # SigV4 unless told otherwise: botocore would presign with the deprecated SigV2 in us-east-1.
    options["signature_version"] = (
        botocore.UNSIGNED if key.anonymous else settings.signature_version or "s3v4"
    )
    if key.endpoint_url:
        # S3-compatible stores (MinIO, Ceph, R2, older versions of each) often refuse the checksum
        # trailers botocore sends by default since 1.36; they are asked for only where required.
        options["request_checksum_calculation"] = "when_required"
        options["response_checksum_validation"] = "when_required"
    try:
        if key.anonymous:
            session = boto3.session.Session()  # nothing of the machine's credentials is looked up
        elif key.chain or key.profile:
            session = (
                boto3.session.Session(profile_name=key.profile) if key.profile else boto3.session.Session()
            )
        else:
            session = boto3.session.Session(
                aws_access_key_id=key.key, aws_secret_access_key=key.secret, aws_session_token=key.token
            )
        region = key.region or session.region_name
        if region is None and key.endpoint_url:
            region = "us-east-1"  # S3-compatible endpoints sign with some region; this is theirs
        return session.client(
            "s3",
            endpoint_url=key.endpoint_url,
            region_name=region,
            verify=key.verify,
            config=botocore.config.Config(**options),
        )
    except botocore.exceptions.ProfileNotFound as error:
        raise ConfigError(f"{error}; check the profile name in clearml.conf or AWS_PROFILE") from None
    except ValueError as error:
        raise ConfigError(f"the S3 client cannot be built: {error}") from None


# -- one resolved target -------------------------------------------------------------------------


@dataclass(frozen=True)
class Target(ObjectTarget):
    """Everything needed to send requests for one URL."""

    location: Location
    options: Options
    credentials: Credentials
    client_key: _ClientKey

    @property
    def bucket(self) -> str:
        return self.location.bucket

    @property
    def key(self) -> str:
        return self.location.key

    @property
    def client(self) -> Any:
        return CLIENTS.client(self.client_key)

    @property
    def key_id(self) -> str | None:
        value = self.credentials.get("key") or self.credentials.get("access_key_id")
        return mask_access_key(value) if isinstance(value, str) and value else None

    translate_error = staticmethod(translate)

    def error_context(self) -> dict[str, Any]:
        return {
            "endpoint": self.options.endpoint_url,
            "key_id": self.key_id,
            "anonymous": self.client_key.anonymous,
        }

    def upload_args(self, content_type: str | None, extra: Mapping[str, str] | None) -> dict[str, Any]:
        args = dict(self.options.extra_args)
        if content_type:
            args["ContentType"] = content_type
        if extra:
            args["Metadata"] = {**args.get("Metadata", {}), **{str(k): str(v) for k, v in extra.items()}}
        return args


def missing_credentials_message(url: StorageURL, resolution: Resolution, location: Location) -> str:
    tried = "; ".join(
        f"{attempt.resolver}: {attempt.note}" if attempt.note else attempt.resolver
        for attempt in resolution.attempts
    )
    where = (
        f'host: "{location.host}{":" + str(location.port) if location.port else ""}", '
        if location.host
        else ""
    )
    return (
        f"no S3 credentials for {url} (tried {tried or 'no resolvers'}). To fix it, add "
        f'{{ {where}bucket: "{location.bucket}", key: "…", secret: "…" }} to {ENTRIES} in '
        f"~/clearml.conf, set {SECTION}.key and {SECTION}.secret (or {SECTION}.profile / "
        f"use_credentials_chain: true), or export {ENV_KEY} and {ENV_SECRET} (or {ENV_PROFILE})"
    )


class _Body(SDKReader):
    """A botocore streaming body as a raw stream; read errors become storage errors."""

    def __init__(self, body: Any, target: Target, what: str) -> None:
        super().__init__(body.read, lambda error: target.fail(error, what), body.close)
        self._body = body
        self._target = target
        self._what = what

    def read_chunk(self, size: int) -> bytes:
        """Up to ``size`` bytes as the SDK hands them, without the copies ``read`` makes."""
        try:
            return bytes(self._body.read(size))
        except Exception as error:
            raise self._target.fail(error, self._what) from error

    def readall(self) -> bytes:
        try:
            return bytes(self._body.read())
        except Exception as error:
            raise self._target.fail(error, self._what) from error


def _total_size(response: Mapping[str, Any]) -> int:
    content_range = str(response.get("ContentRange") or "")
    if "/" in content_range and content_range.rsplit("/", 1)[1].isdigit():
        return int(content_range.rsplit("/", 1)[1])
    return int(response.get("ContentLength") or 0)


def _code(error: BaseException) -> str:
    if isinstance(error, botocore.exceptions.ClientError):
        return str(error.response.get("Error", {}).get("Code", ""))
    return ""


class S3Driver(ObjectStoreDriver[Target]):
    """Amazon S3 and S3-compatible object stores."""

    capabilities = OBJECT_STORE_CAPABILITIES
    probe_known_size = True  # s3transfer takes a stream of unknown length: a short one stays one PUT

    def __init__(self, config: Config, url: StorageURL) -> None:
        super().__init__(config, url)
        self._settings: S3Settings = settings_for(config)

    # -- resolution -----------------------------------------------------------------------------
    def target(self, url: StorageURL) -> Target:
        location = self._settings.locate(url)
        entry = self._settings.match(location)
        # Credentials and options depend on the endpoint, the bucket and the matching entry only:
        # resolved once for all the keys they cover.
        scope = (location.host, location.port, location.bucket, entry.index if entry else None)

        def resolve() -> tuple[Options, Credentials, _ClientKey, Resolution]:
            options = self._settings.options(location, entry, os.environ)
            resolution = chain_for("s3").explain(url, self.config)
            credentials = resolution.credentials
            if credentials is None:
                raise MissingCredentialsError(missing_credentials_message(url, resolution, location))
            chain = bool(credentials.get("chain")) and not credentials.get("key")
            client_key = _ClientKey(
                key=None if chain else credentials.get("key"),
                secret=None if chain else credentials.get("secret"),
                token=None if chain else credentials.get("token"),
                profile=credentials.get("profile"),
                chain=chain,
                region=options.region,
                endpoint_url=options.endpoint_url,
                verify=options.verify,
                boto3=self._settings.boto3,
                anonymous=bool(credentials.get("anonymous")),
            )
            return options, credentials, client_key, resolution

        options, credentials, client_key, _resolution = self.scopes.get(scope, resolve)
        return Target(location, options, credentials, client_key)

    @classmethod
    def describe(cls, url: StorageURL, config: Config) -> dict[str, Any]:
        """The fields ``storage resolve`` prints for an ``s3://`` URL (never a secret).

        Works without network access and without credentials (then ``resolver`` is None).
        """
        settings = settings_for(config)
        location = settings.locate(url)
        entry = settings.match(location)
        options = settings.options(location, entry, os.environ)
        resolution = chain_for("s3").explain(url, config)
        credentials = resolution.credentials
        access = profile = None
        if credentials is not None:
            value = credentials.get("key") or credentials.get("access_key_id")
            access = mask_access_key(value) if isinstance(value, str) and value else None
            profile = credentials.get("profile")
        region = options.region
        if region is None:
            with contextlib.suppress(Exception):
                region = boto3.session.Session(profile_name=profile).region_name
        if region is None and options.endpoint_url:
            region = "us-east-1"
        return {
            "backend": "s3",
            "resolver": resolution.resolver,
            "source": resolution.source,
            "bucket": location.bucket,
            "key": location.key,
            "endpoint_url": options.endpoint_url,
            "endpoint_source": options.endpoint_source,
            "region": region,
            "secure": options.secure,
            "verify": True if options.verify is None else options.verify,
            "multipart": options.multipart,
            "access_key_id": access,
            "profile": profile,
            "anonymous": bool(credentials is not None and credentials.get("anonymous")),
            "entry": entry.name if entry is not None else None,
        }

    # -- reads ---------------------------------------------------------------------------------
    def open_read(self, url: StorageURL, byte_range: ByteRange | None = None) -> BinaryIO:
        target = self.object_target(url)
        if self.empty_range(url, byte_range):
            return io.BytesIO(b"")
        request: dict[str, Any] = {"Bucket": target.bucket, "Key": target.key}
        if byte_range is not None:
            start, stop = byte_range
            request["Range"] = f"bytes={start}-{'' if stop is None else stop - 1}"
        try:
            response = target.client.get_object(**request)
        except Exception as error:
            if _code(error) == "InvalidRange":
                return io.BytesIO(b"")  # the range starts past the end of an existing object
            raise target.fail(error, "read") from None
        return io.BufferedReader(_Body(response["Body"], target, "read"), COPY_CHUNK)

    def download_object(self, target: Target, url: StorageURL, destination: Path) -> int:
        part = self._settings.boto3.multipart_chunksize
        request: dict[str, Any] = {"Bucket": target.bucket, "Key": target.key}
        if target.options.multipart:
            request["Range"] = f"bytes=0-{part - 1}"
        try:
            first = target.client.get_object(**request)
        except Exception as error:
            if _code(error) == "InvalidRange":  # a ranged GET of an empty object
                return write_atomically(destination, io.BytesIO(b""))
            raise target.fail(error, "download") from None
        total = _total_size(first)
        body = _Body(first["Body"], target, "download")
        if not target.options.multipart or total <= part:
            with body:
                return write_atomically(destination, io.BufferedReader(body, COPY_CHUNK))
        return self._download_parts(target, destination, body, total, part, str(first.get("ETag") or ""))

    def _download_parts(
        self, target: Target, destination: Path, first: _Body, total: int, part: int, etag: str
    ) -> int:
        """The rest of a large object in parallel ranged GETs, all pinned to the first part's ETag."""
        client = target.client
        with atomic_file(destination) as out:
            fd = out.fileno()

            def write_from(stream: _Body, offset: int) -> None:
                while True:
                    chunk = stream.read_chunk(COPY_CHUNK)
                    if not chunk:
                        return
                    os.pwrite(fd, chunk, offset)
                    offset += len(chunk)

            def fetch(start: int) -> None:
                stop = min(start + part, total) - 1
                request = {"Bucket": target.bucket, "Key": target.key, "Range": f"bytes={start}-{stop}"}
                if etag:
                    request["IfMatch"] = etag
                try:
                    response = client.get_object(**request)
                except Exception as error:
                    if _code(error) == "PreconditionFailed":
                        raise TransientStorageError(
                            f"cannot download {target.location.url}: the object changed while it was downloading"
                        ) from None
                    raise target.fail(error, "download") from None
                with _Body(response["Body"], target, "download") as body:
                    write_from(body, start)

            os.ftruncate(fd, total)
            workers = min(self._settings.boto3.max_multipart_concurrency, -(-total // part))
            with ThreadPoolExecutor(max(1, workers), thread_name_prefix="s3-download") as pool:
                futures = [pool.submit(fetch, start) for start in range(part, total, part)]
                try:
                    with first:
                        write_from(first, 0)
                    for future in futures:
                        future.result()
                except BaseException:
                    for future in futures:  # one part failed: the parts not started never will
                        future.cancel()
                    raise
        return total

    def stat(self, url: StorageURL) -> ObjectInfo:
        target = self.object_target(url)
        try:
            head = target.client.head_object(Bucket=target.bucket, Key=target.key)
        except Exception as error:
            raise target.fail(error, "stat") from None
        return object_info(
            url,
            size=head.get("ContentLength"),
            modified=head.get("LastModified"),
            etag=head.get("ETag"),
            content_type=head.get("ContentType"),
            metadata=head.get("Metadata"),
        )

    def list(self, url: StorageURL, *, recursive: bool = False) -> Iterator[ObjectInfo]:
        folder = url.as_folder()
        target = self.target(folder)
        prefix = target.key
        request: dict[str, Any] = {"Bucket": target.bucket, "Prefix": prefix}
        if not recursive:
            request["Delimiter"] = "/"
        listing = KeyListing(folder, prefix)
        try:
            for page in target.client.get_paginator("list_objects_v2").paginate(**request):
                for item in page.get("Contents", ()):
                    key = item["Key"]
                    if key.endswith("/"):
                        continue  # a folder marker, not an object
                    yield listing.object(
                        key, size=item.get("Size"), modified=item.get("LastModified"), etag=item.get("ETag")
                    )
                for common in page.get("CommonPrefixes", ()):
                    yield listing.sub_folder(common["Prefix"])
        except Exception as error:
            raise target.fail(error, "list") from None

    # -- writes --------------------------------------------------------------------------------
    def single_request_limit(self, target: Target) -> int:
        return self._settings.boto3.multipart_threshold if target.options.multipart else MAX_SINGLE_PUT

    def upload_object(
        self,
        target: Target,
        data: bytes | BinaryIO,
        size: int | None,
        content_type: str | None,
        extra: Mapping[str, str] | None,
    ) -> None:
        args = target.upload_args(content_type, extra)
        if size is None:
            self._managed_upload(target, data, args)
        else:
            self._put(target, data if isinstance(data, bytes) else read_upto(data, size), args)

    def upload_file(
        self,
        local_path: str | os.PathLike[str],
        url: StorageURL,
        *,
        content_type: str | None = None,
        extra: Mapping[str, str] | None = None,
    ) -> None:
        """A large file goes to s3transfer by name: its worker threads read the parts themselves."""
        target = self.object_target(url)
        path = Path(local_path)
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            raise ObjectNotFoundError(f"cannot upload {path}: no such file") from None
        args = target.upload_args(content_type or guess_content_type(url), extra)
        if not target.options.multipart or size <= self._settings.boto3.multipart_threshold:
            with path.open("rb") as body:
                self._put(target, body, args)
            return
        self._managed_upload(target, str(path), args)

    def _put(self, target: Target, body: Any, args: Mapping[str, Any]) -> None:
        try:
            target.client.put_object(Bucket=target.bucket, Key=target.key, Body=body, **args)
        except botocore.exceptions.ParamValidationError as error:
            raise ConfigError(
                f"S3 upload arguments (extra_args, acl) are not valid for boto3: {error}"
            ) from None
        except Exception as error:
            raise target.fail(error, "upload") from None

    def _managed_upload(self, target: Target, source: Any, args: Mapping[str, Any]) -> None:
        manager = CLIENTS.manager(target.client_key, target.options.multipart)
        try:
            manager.upload(source, target.bucket, target.key, extra_args=dict(args)).result()
        except ValueError as error:
            raise ConfigError(
                f"S3 upload arguments (extra_args, acl) are not valid for boto3: {error}"
            ) from None
        except Exception as error:
            raise target.fail(error, "upload") from None

    def delete(self, url: StorageURL) -> None:
        self.stat(url)  # S3 deletes a missing key without a word; the contract wants NotFound
        target = self.target(url)
        try:
            target.client.delete_object(Bucket=target.bucket, Key=target.key)
        except Exception as error:
            raise target.fail(error, "delete") from None

    def delete_folder(self, url: StorageURL) -> int:
        folder = url.as_folder()
        target = self.target(folder)
        keys = [self.target(info.url).key for info in self.list(folder, recursive=True)]
        count = 0
        for start in range(0, len(keys), _DELETE_BATCH):
            batch = keys[start : start + _DELETE_BATCH]
            try:
                response = target.client.delete_objects(
                    Bucket=target.bucket, Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True}
                )
            except Exception as error:
                raise target.fail(error, "delete the folder") from None
            errors = response.get("Errors") or []
            if errors:
                first = errors[0]
                fake = botocore.exceptions.ClientError(
                    {"Error": {"Code": first.get("Code"), "Message": first.get("Message")}}, "DeleteObjects"
                )
                raise target.fail(fake, f"delete {first.get('Key')!r} in the folder") from None
            count += len(batch)
        return count

    def copy_object(self, source: Target, target: Target, src: StorageURL, dst: StorageURL) -> bool:
        if source.client_key != target.client_key:
            return False  # two endpoints or two sets of credentials: bytes pass through here
        copy_source = {"Bucket": source.bucket, "Key": source.key}
        try:
            target.client.copy_object(CopySource=copy_source, Bucket=target.bucket, Key=target.key)
            return True
        except Exception as error:
            if _code(error) not in ("InvalidRequest", "EntityTooLarge"):
                raise source.fail(error, f"copy to {dst}") from None
        manager = CLIENTS.manager(target.client_key, True)
        try:  # larger than 5 GiB: a multipart copy
            manager.copy(copy_source, target.bucket, target.key).result()
        except Exception as error:
            raise source.fail(error, f"copy to {dst}") from None
        return True

    # -- presigned URLs ------------------------------------------------------------------------
    def presign(self, url: StorageURL, *, method: str = "get", expires: int = 3600) -> str:
        methods = {"get": "get_object", "put": "put_object"}
        operation = methods.get(method.lower())
        if operation is None:
            raise UnsupportedOperationError(f"presigned S3 URLs are for get or put, not {method!r}")
        if not 0 < expires <= 7 * 24 * 3600:
            raise UnsupportedOperationError(
                f"presigned S3 URLs expire after 1 second to 7 days (604800 s), not {expires} s"
            )
        target = self.object_target(url)
        try:
            return str(
                target.client.generate_presigned_url(
                    operation, Params={"Bucket": target.bucket, "Key": target.key}, ExpiresIn=int(expires)
                )
            )
        except Exception as error:
            raise target.fail(error, "presign") from None

    # -- helpers -------------------------------------------------------------------------------
    def check_object(self, target: Target) -> None:
        if not target.key:
            raise ObjectNotFoundError(
                f"{target.location.url} names the bucket {target.bucket!r}, not an object in it"
            )


__all__ = ["CLIENTS", "S3Driver", "reset_clients", "transfer_config"]
