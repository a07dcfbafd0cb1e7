"""botocore's exceptions as the core's storage errors, with messages that say what to do.

404 / NoSuchKey → :class:`ObjectNotFoundError`; 401, 403 and refused keys → :class:`PermissionDeniedError`;
throttling, 5xx, dropped connections and timeouts → :class:`TransientStorageError` (the transfer
layer retries those, nothing else); an endpoint that cannot be reached or whose certificate does
not verify → :class:`S3EndpointError`, a user error. Messages name the URL and the masked access
key id, never a secret.
"""

from __future__ import annotations

import contextlib
from typing import Any

from clearml_core.errors import ClearMLCoreError, UserError
from clearml_core.storage.errors import (
    ObjectNotFoundError,
    PermissionDeniedError,
    StorageError,
    TransientStorageError,
)

_NOT_FOUND = {"NoSuchKey", "404", "NotFound", "NoSuchUpload", "NoSuchVersion"}
_DENIED = {
    "AccessDenied",
    "401",
    "403",
    "Unauthorized",
    "Forbidden",
    "AllAccessDisabled",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "InvalidToken",
    "ExpiredToken",
    "TokenRefreshRequired",
    "AccountProblem",
    "InvalidObjectState",
}
_BAD_KEYS = {"InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken"}
_TRANSIENT = {
    "SlowDown",
    "Throttling",
    "ThrottlingException",
    "RequestTimeout",
    "RequestTimeTooSkewed",
    "InternalError",
    "ServiceUnavailable",
    "RequestLimitExceeded",
    "BandwidthLimitExceeded",
    "TooManyRequests",
    "503",
    "500",
    "502",
    "504",
    "429",
}


class S3EndpointError(StorageError, UserError):
    """The S3 endpoint cannot be reached, or its TLS certificate does not verify."""


class MissingCredentialsError(StorageError, UserError):
    """No resolver of the ``s3://`` chain found credentials for a URL."""


def translate(
    error: BaseException, what: str, *, endpoint: str | None, key_id: str | None, anonymous: bool = False
) -> Exception:
    """The storage error for a botocore / s3transfer exception raised while doing ``what``.

    ``what`` names the operation and the URL (``download s3://bucket/key``); ``endpoint`` is the
    endpoint URL in use (None for AWS); ``key_id`` the masked access key id; ``anonymous``: the
    requests were unsigned (a refusal then means the bucket is not public).
    """
    import botocore.exceptions as bx

    where = endpoint or "AWS S3"
    if isinstance(error, ClearMLCoreError):
        return error  # already says what is wrong (a storage error, a bad profile in the config)
    if isinstance(error, bx.ClientError):
        who = "anonymous (unsigned) requests" if anonymous else f"access key {key_id}" if key_id else None
        return _client_error(error, what, where, who)
    if isinstance(error, bx.SSLError):
        return S3EndpointError(
            f"cannot {what}: TLS verification of {where} failed ({_reason(error)}); set verify to a CA "
            "bundle path (the credentials entry's verify, sdk.aws.s3.verify or AWS_CA_BUNDLE), or "
            "verify: false / MLFLOW_S3_IGNORE_TLS=true for a test server"
        )
    if isinstance(error, bx.EndpointConnectionError):
        return S3EndpointError(
            f"cannot {what}: the S3 endpoint {where} cannot be reached ({_reason(error)}); check the host "
            "and port in the URL or in sdk.aws.s3.credentials, secure: false for an http endpoint, "
            "or MLFLOW_S3_ENDPOINT_URL"
        )
    if isinstance(error, bx.NoCredentialsError | bx.PartialCredentialsError):
        return MissingCredentialsError(
            f"cannot {what}: {error}; run `clearml-core storage resolve` on the URL"
        )
    if isinstance(
        error,
        bx.ConnectionClosedError
        | bx.ReadTimeoutError
        | bx.ConnectTimeoutError
        | bx.ResponseStreamingError
        | bx.IncompleteReadError
        | bx.HTTPClientError
        | ConnectionError
        | TimeoutError,
    ):
        return TransientStorageError(f"cannot {what}: connection to {where} failed ({_reason(error)})")
    if isinstance(error, bx.BotoCoreError):
        return StorageError(f"cannot {what}: {error}")
    return StorageError(f"cannot {what}: {type(error).__name__}: {error}")


def _client_error(error: Any, what: str, where: str, who: str | None) -> Exception:
    response = getattr(error, "response", {}) or {}
    details = response.get("Error", {}) or {}
    code = str(details.get("Code", ""))
    status = int(response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    message = str(details.get("Message", "") or code)
    if code == "NoSuchBucket":
        bucket = details.get("BucketName") or ""
        shown = f"the bucket {bucket!r}" if bucket else "the bucket"
        return ObjectNotFoundError(f"cannot {what}: {shown} does not exist at {where}")
    if code in _NOT_FOUND or status == 404:
        return ObjectNotFoundError(f"cannot {what}: no such object")
    if code in _DENIED or status in (401, 403):
        who = who or "the credentials in use"
        if code in _BAD_KEYS:
            hint = f"{who} or its secret is wrong for {where} ({code})"
        else:
            hint = f"{who} may not do this at {where} ({code or status}: {message})"
        return PermissionDeniedError(
            f"cannot {what}: {hint}; `clearml-core storage resolve URL` shows which credentials apply"
        )
    if code in _TRANSIENT or status >= 500 or status == 429:
        retry_after = None
        headers = response.get("ResponseMetadata", {}).get("HTTPHeaders", {}) or {}
        with contextlib.suppress(TypeError, ValueError):
            retry_after = float(str(headers.get("retry-after")))
        return TransientStorageError(
            f"cannot {what}: {where} answered {code or status} ({message})", retry_after=retry_after
        )
    if code in (
        "InvalidBucketName",
        "InvalidArgument",
        "InvalidRequest",
        "EntityTooLarge",
        "KeyTooLongError",
    ):
        return _UserStorageError(f"cannot {what}: {message} ({code})")
    return StorageError(f"cannot {what}: {where} answered {code or status} ({message})")


class _UserStorageError(StorageError, UserError):
    """A request S3 refuses because of what was asked (a bad bucket name, a too long key)."""


def _reason(error: BaseException) -> str:
    text = str(error)
    for marker in ("[SSL: ", "Connection refused", "Name or service not known", "timed out"):
        index = text.find(marker)
        if index >= 0:
            return text[index:].split(")")[0].split("'")[0].strip()
    return text


__all__ = ["MissingCredentialsError", "S3EndpointError", "translate"]
