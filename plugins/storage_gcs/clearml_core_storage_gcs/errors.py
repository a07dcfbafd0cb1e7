"""google-cloud-storage's and google-auth's exceptions as the core's storage errors.

404 → :class:`ObjectNotFoundError` (a missing bucket says so); 401 / 403 and refused keys →
:class:`PermissionDeniedError` (an anonymous request that was refused also says which resolvers
found nothing and how to give credentials); 408, 429, 5xx, dropped connections, timeouts →
:class:`TransientStorageError`; an endpoint that cannot be reached at all →
:class:`GCSEndpointError` (transient *and* a user error). Messages name the URL and the
principal, never a key.
"""

from __future__ import annotations

import contextlib
from typing import Any

from clearml_core.errors import UserError
from clearml_core.storage.errors import (
    ObjectNotFoundError,
    PermissionDeniedError,
    StorageError,
    TransientStorageError,
)

FIXES = (
    "add { bucket: …, subdir: …, credentials_json: <key file or JSON> } to sdk.google.storage.credentials "
    "(or set sdk.google.storage.credentials_json) in ~/clearml.conf, export GOOGLE_APPLICATION_CREDENTIALS, "
    "or run `gcloud auth application-default login`"
)


class GCSEndpointError(TransientStorageError, UserError):
    """The storage endpoint (or the token endpoint) cannot be reached, or its TLS does not verify."""


class MissingCredentialsError(StorageError, UserError):
    """No resolver of the ``gs://`` chain found credentials (and anonymous access is off)."""


class _UserStorageError(StorageError, UserError):
    """A request Google refuses because of what was asked (a bad bucket name, a bad argument)."""


def _status(error: BaseException) -> int:
    code = getattr(error, "code", None)
    if isinstance(code, int):
        return code
    response = getattr(error, "response", None)
    status = getattr(response, "status_code", None)
    return int(status) if isinstance(status, int) else 0


def _first_line(error: BaseException) -> str:
    message = getattr(error, "message", None) or str(error)
    text = str(message).strip()
    return text.splitlines()[0][:300] if text else type(error).__name__


def _unwrap(error: BaseException) -> BaseException:
    """A RetryError holds the last real failure; a requests error may wrap urllib3's."""
    from google.api_core import exceptions as gx

    seen = 0
    while isinstance(error, gx.RetryError) and error.cause is not None and seen < 5:
        error = error.cause
        seen += 1
    return error


def translate(
    error: BaseException,
    what: str,
    *,
    endpoint: str | None,
    principal: str | None,
    auth: str | None,
    tried: str = "",
    bucket: str | None = None,
) -> Exception:
    """The storage error for a Google exception raised while doing ``what`` (``read gs://b/k``)."""
    import google.auth.exceptions as ga
    import requests
    from google.api_core import exceptions as gx

    if isinstance(error, StorageError | UserError):
        return error
    error = _unwrap(error)
    where = endpoint or "Google Cloud Storage"
    status = _status(error)
    if isinstance(error, ga.TransportError):
        return GCSEndpointError(
            f"cannot {what}: the token endpoint cannot be reached to authenticate "
            f"{principal or 'the credentials'} ({_first_line(error)})"
        )
    if isinstance(error, ga.RefreshError):
        return PermissionDeniedError(
            f"cannot {what}: Google refused to issue a token for {principal or 'the credentials in use'} "
            f"({_first_line(error)}); the key may be wrong, revoked or expired"
        )
    if isinstance(error, ga.InvalidOperation) and auth == "anonymous":
        # the server answered 401 to a request without credentials, and google-auth then tried
        # to refresh the anonymous credentials: a refusal, not a missing configuration
        return _http_error(error, 401, what, where, principal, auth, tried, bucket)
    if isinstance(error, ga.GoogleAuthError):
        return MissingCredentialsError(f"cannot {what}: {_first_line(error)}; {FIXES}")
    if isinstance(error, gx.GoogleAPICallError) or status:
        return _http_error(error, status, what, where, principal, auth, tried, bucket)
    if isinstance(error, requests.exceptions.SSLError):
        return GCSEndpointError(
            f"cannot {what}: TLS verification of {where} failed ({_first_line(error)}); point "
            "REQUESTS_CA_BUNDLE at the CA bundle that signed its certificate"
        )
    if isinstance(error, requests.exceptions.ConnectionError) and not isinstance(
        error, requests.exceptions.ChunkedEncodingError
    ):
        return GCSEndpointError(
            f"cannot {what}: {where} cannot be reached ({_first_line(error)}); check STORAGE_EMULATOR_HOST "
            "or the network"
        )
    if isinstance(
        error,
        requests.exceptions.Timeout
        | requests.exceptions.ChunkedEncodingError
        | ConnectionError
        | TimeoutError
        | gx.RetryError,
    ):
        return TransientStorageError(f"cannot {what}: connection to {where} failed ({_first_line(error)})")
    with contextlib.suppress(ImportError):
        from google.resumable_media import DataCorruption

        if isinstance(error, DataCorruption):
            return TransientStorageError(f"cannot {what}: the download's checksum does not match; try again")
    return StorageError(f"cannot {what}: {type(error).__name__}: {_first_line(error)}")


def _http_error(
    error: BaseException,
    status: int,
    what: str,
    where: str,
    principal: str | None,
    auth: str | None,
    tried: str,
    bucket: str | None,
) -> Exception:
    message = _first_line(error)
    if status == 404:
        if "bucket" in message.lower() and "does not exist" in message.lower():
            return ObjectNotFoundError(f"cannot {what}: the bucket {bucket!r} does not exist")
        return ObjectNotFoundError(f"cannot {what}: no such object")
    if status in (401, 403):
        if auth == "anonymous":
            detail = f" (tried {tried})" if tried else ""
            return PermissionDeniedError(
                f"cannot {what}: the request went without credentials, since none were found{detail}, "
                f"and {where} refused it ({status}); to give credentials, {FIXES}"
            )
        who = principal or "the credentials in use"
        return PermissionDeniedError(
            f"cannot {what}: {who} may not do this ({status}); `clearml-core storage resolve URL` shows "
            "which credentials apply"
        )
    if status in (408, 429) or status >= 500:
        retry_after = None
        response = getattr(error, "response", None)
        headers = getattr(response, "headers", None) or {}
        with contextlib.suppress(TypeError, ValueError):
            retry_after = float(str(headers.get("retry-after")))
        return TransientStorageError(f"cannot {what}: {where} answered {status}", retry_after=retry_after)
    if 400 <= status < 500:
        return _UserStorageError(f"cannot {what}: {where} answered {status} ({message})")
    return StorageError(f"cannot {what}: {where} answered {status} ({message})")


def missing_credentials_message(url: Any, tried: str, bucket: str) -> str:
    return (
        f"no Google Cloud Storage credentials for {url} (tried {tried or 'no resolvers'}), and "
        f"sdk.google.storage.anonymous is false. To fix it, add {{ bucket: {bucket!r}, credentials_json: "
        "<key file or JSON> }} to sdk.google.storage.credentials (or set sdk.google.storage.credentials_json) "
        "in ~/clearml.conf, export GOOGLE_APPLICATION_CREDENTIALS, or run "
        "`gcloud auth application-default login`"
    )


__all__ = ["FIXES", "GCSEndpointError", "MissingCredentialsError", "missing_credentials_message", "translate"]
