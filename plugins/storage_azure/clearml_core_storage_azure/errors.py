"""azure-core's exceptions as the core's storage errors, with messages that say what to do.

404 → :class:`ObjectNotFoundError` (a missing container says so); 401 / 403 →
:class:`PermissionDeniedError`; 408, 429, 5xx, dropped connections and timeouts →
:class:`TransientStorageError` (the transfer layer retries those, nothing else); an endpoint that
cannot be reached at all → :class:`AzureEndpointError`, transient *and* a user error (retried, then
shown as one line naming the endpoint). Messages name the URL, the account and the endpoint,
never a key, SAS token or connection string: the SDK's own text is reduced to its error code and
first line.
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

_BAD_CREDENTIALS = {"AuthenticationFailed", "AuthorizationFailure", "InvalidAuthenticationInfo"}


class AzureEndpointError(TransientStorageError, UserError):
    """The Azure endpoint cannot be reached (refused, unknown host, TLS failure)."""


class MissingCredentialsError(StorageError, UserError):
    """No resolver of the Azure chain found credentials for a URL."""


class _UserStorageError(StorageError, UserError):
    """A request Azure refuses because of what was asked (a bad container name, a conflict)."""


def error_code(error: BaseException) -> str:
    code = getattr(error, "error_code", None)
    if code is None:
        response = getattr(error, "response", None)
        headers = getattr(response, "headers", None) or {}
        code = headers.get("x-ms-error-code")
    text = str(getattr(code, "value", code) or "")
    return text


def status_of(error: BaseException) -> int:
    status = getattr(error, "status_code", None)
    if status is None:
        response = getattr(error, "response", None)
        status = getattr(response, "status_code", None)
    try:
        return int(status or 0)
    except (TypeError, ValueError):
        return 0


def _first_line(error: BaseException) -> str:
    message = getattr(error, "message", None) or str(error)
    return str(message).strip().splitlines()[0] if str(message).strip() else type(error).__name__


def translate(
    error: BaseException,
    what: str,
    *,
    endpoint: str | None,
    account: str | None,
    container: str | None,
    auth: str | None,
) -> Exception:
    """The storage error for an azure-core exception raised while doing ``what`` (``read azure://…``)."""
    from azure.core import exceptions as ax

    if isinstance(error, StorageError | UserError):
        return error
    where = endpoint or "Azure Blob Storage"
    who = f"the {auth.replace('_', ' ')} of account {account!r}" if auth and account else "the credentials"
    if isinstance(error, ax.ClientAuthenticationError) and status_of(error) == 0:
        # raised by azure-identity before any request: no source of DefaultAzureCredential worked
        return MissingCredentialsError(
            f"cannot {what}: DefaultAzureCredential found no usable credentials ({_first_line(error)}); "
            "configure an account_key / sas_token / connection_string in sdk.azure.storage.containers "
            "or set AZURE_STORAGE_CONNECTION_STRING; `clearml-core storage resolve URL` shows what applies"
        )
    if isinstance(error, ax.HttpResponseError) or status_of(error):
        return _http_error(error, what, where, who, container)
    if isinstance(error, ax.ServiceRequestError):
        reason = _first_line(error)
        if "SSL" in reason or "CERTIFICATE" in reason.upper():
            return AzureEndpointError(
                f"cannot {what}: TLS verification of {where} failed ({reason}); point REQUESTS_CA_BUNDLE "
                "at the CA bundle that signed its certificate"
            )
        return AzureEndpointError(
            f"cannot {what}: the Azure endpoint {where} cannot be reached ({reason}); check the account "
            "in the URL, or the account_url / connection string in sdk.azure.storage.containers or "
            "AZURE_STORAGE_CONNECTION_STRING"
        )
    if isinstance(error, ax.ServiceResponseError | ax.IncompleteReadError | ConnectionError | TimeoutError):
        return TransientStorageError(f"cannot {what}: connection to {where} failed ({_first_line(error)})")
    if isinstance(error, ax.AzureError):
        return StorageError(f"cannot {what}: {_first_line(error)}")
    return StorageError(f"cannot {what}: {type(error).__name__}: {error}")


def _http_error(error: BaseException, what: str, where: str, who: str, container: str | None) -> Exception:
    code = error_code(error)
    status = status_of(error)
    if code == "ContainerNotFound":
        return ObjectNotFoundError(f"cannot {what}: the container {container!r} does not exist at {where}")
    if status == 404:
        return ObjectNotFoundError(f"cannot {what}: no such blob")
    if status in (401, 403):
        if code in _BAD_CREDENTIALS:
            hint = f"{who} is wrong or expired for {where} ({code})"
        else:
            hint = f"{who} may not do this at {where} ({code or status})"
        return PermissionDeniedError(
            f"cannot {what}: {hint}; `clearml-core storage resolve URL` shows which credentials apply"
        )
    if status == 412 or code == "ConditionNotMet":
        return TransientStorageError(f"cannot {what}: the blob changed while it was being read")
    if status in (408, 429) or status >= 500:
        retry_after = None
        response = getattr(error, "response", None)
        headers = getattr(response, "headers", None) or {}
        with contextlib.suppress(TypeError, ValueError):
            retry_after = float(str(headers.get("retry-after")))
        return TransientStorageError(
            f"cannot {what}: {where} answered {status} {code}".rstrip(), retry_after=retry_after
        )
    if 400 <= status < 500:
        return _UserStorageError(f"cannot {what}: {where} answered {status} {code} ({_first_line(error)})")
    return StorageError(f"cannot {what}: {where} answered {status or ''} {code} ({_first_line(error)})")


def missing_credentials_message(url: Any, attempts: list[Any], account: str | None, container: str) -> str:
    tried = "; ".join(f"{a.resolver}: {a.note}" if a.note else a.resolver for a in attempts)
    account_text = account or "<account>"
    return (
        f"no Azure credentials for {url} (tried {tried or 'no resolvers'}). To fix it, add "
        f'{{ account_name: "{account_text}", account_key: "…", container_name: "{container}" }} '
        "(or sas_token / connection_string instead of account_key) to sdk.azure.storage.containers in "
        "~/clearml.conf, or export AZURE_STORAGE_CONNECTION_STRING, AZURE_STORAGE_ACCESS_KEY, or "
        "AZURE_STORAGE_ACCOUNT and AZURE_STORAGE_KEY, or install azure-identity for DefaultAzureCredential "
        "(pip install 'clearml-core-storage-azure[identity]')"
    )


__all__ = [
    "AzureEndpointError",
    "MissingCredentialsError",
    "error_code",
    "missing_credentials_message",
    "status_of",
    "translate",
]
