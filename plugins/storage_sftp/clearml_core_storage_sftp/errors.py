"""paramiko's and the SFTP protocol's errors as the core's storage errors, with messages that help.

Missing file → :class:`ObjectNotFoundError`; permission → :class:`PermissionDeniedError`; a dropped
or timed-out connection → :class:`TransientStorageError` (the transfer layer retries it); a refused
login → :class:`SFTPAuthenticationError` naming the user, the host and what was tried (never a
password or passphrase); a server that cannot be reached → :class:`SFTPConnectionError`.
"""

from __future__ import annotations

import errno
import socket

import paramiko

from clearml_core.errors import UserError
from clearml_core.storage.errors import (
    ObjectNotFoundError,
    PermissionDeniedError,
    StorageError,
    TransientStorageError,
)


class SFTPAuthenticationError(StorageError, UserError):
    """The server refused the login; the message names the user, the host and what was tried."""


class SFTPConnectionError(StorageError, UserError):
    """The server cannot be reached at all (unknown host name, nothing listening on the port)."""


class MissingCredentialsError(StorageError, UserError):
    """No resolver of the ``sftp://`` chain found a key, an agent or a password for a URL."""


_TRANSIENT_ERRNOS = {
    errno.ECONNRESET,
    errno.ECONNABORTED,
    errno.EPIPE,
    errno.ETIMEDOUT,
    errno.EHOSTUNREACH,
    errno.ENETUNREACH,
    errno.ENETDOWN,
}


def is_connection_error(error: BaseException) -> bool:
    """Whether ``error`` means the SSH connection (or its channel) is gone."""
    if isinstance(error, EOFError | paramiko.SSHException | socket.timeout | TimeoutError | ConnectionError):
        return not isinstance(error, paramiko.AuthenticationException)
    return isinstance(error, OSError) and error.errno in _TRANSIENT_ERRNOS


def translate(error: BaseException, what: str) -> Exception:
    """The storage error for ``error`` raised while doing ``what`` (``read sftp://host/path``)."""
    if isinstance(error, StorageError):
        return error
    if isinstance(error, FileNotFoundError) or (isinstance(error, OSError) and error.errno == errno.ENOENT):
        return ObjectNotFoundError(f"cannot {what}: no such file")
    if isinstance(error, PermissionError) or (isinstance(error, OSError) and error.errno == errno.EACCES):
        return PermissionDeniedError(f"cannot {what}: permission denied by the server")
    if is_connection_error(error):
        reason = str(error) or type(error).__name__
        return TransientStorageError(f"cannot {what}: the SSH connection failed ({reason})")
    if isinstance(error, OSError):
        return StorageError(f"cannot {what}: the server said: {error.strerror or error}")
    return StorageError(f"cannot {what}: {type(error).__name__}: {error}")


__all__ = [
    "MissingCredentialsError",
    "SFTPAuthenticationError",
    "SFTPConnectionError",
    "is_connection_error",
    "translate",
]
