"""What goes wrong with the cache itself, as opposed to the storage it caches."""

from __future__ import annotations

from clearml_core.errors import UserError
from clearml_core.storage.errors import StorageError


class ZeroSizeDownloadError(StorageError):
    """A download produced an empty file although the object is not known to be empty."""


class CacheError(UserError):
    """The cache folder cannot be used (not writable, not a folder)."""


__all__ = ["CacheError", "ZeroSizeDownloadError"]
