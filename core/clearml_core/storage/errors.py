"""Errors every storage driver raises, so callers never see a backend SDK's exception types.

The transfer layer retries :class:`TransientStorageError` only; everything else fails at once.
Messages name the URL with its password masked (``str(url)``), never the secret.
"""

from __future__ import annotations

from clearml_core.errors import ClearMLCoreError, NotFoundError, UserError


class StorageError(ClearMLCoreError):
    """A storage operation failed."""


class ObjectNotFoundError(StorageError, NotFoundError):
    """The object (or folder) the URL names does not exist."""


class TransientStorageError(StorageError):
    """A failure worth retrying: a dropped connection, a timeout, HTTP 429 / 5xx, throttling.

    ``retry_after`` is the delay the server asked for, in seconds, when it said one.
    """

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermissionDeniedError(StorageError, UserError):
    """The credentials in use may not do this; the message says which URL and what to check."""


class UnsupportedOperationError(StorageError, UserError):
    """The backend cannot do this at all (listing over plain HTTP, presigning a local file)."""


class BackendNotInstalledError(StorageError, UserError):
    """No installed backend serves the URL's scheme; the message carries the install hint."""


__all__ = [
    "BackendNotInstalledError",
    "ObjectNotFoundError",
    "PermissionDeniedError",
    "StorageError",
    "TransientStorageError",
    "UnsupportedOperationError",
]
