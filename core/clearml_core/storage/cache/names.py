"""What the cache calls things: entries, extracted archives, partial downloads, context folders.

An entry is ``<md5 of the URL>.<object name>``; everything else the cache writes in a context
folder is named after the entry it belongs to, so :func:`entry_guarding` can tell, from a name
alone, whether the cache wrote it and which entry's lock guards it.
"""

from __future__ import annotations

import functools
import hashlib
import re

from clearml_core.storage.archive import TEMP_PREFIX as EXTRACTING_PREFIX
from clearml_core.storage.driver import TEMP_SUFFIX

CACHE_FOLDER = "clearml-core"
"""The cache's own folder inside the base: the base may be ClearML's cache folder as well."""
DEFAULT_CONTEXT = "global"
INDEX_NAME = "index.sqlite3"
PARTIAL_PREFIX = ".partial."
LOCKS_FOLDER = ".locks"
ARCHIVE_MARK = "_artifacts_archive"

_MAX_NAME_BYTES = 150  # of the object's name; with the hash, marks and suffixes it stays < 255


def _safe_name(name: str) -> str:
    """The object's name as a file name: no separators, not empty, not too long for the disk."""
    name = name.replace("/", "_").replace("\\", "_").replace("\x00", "_").strip()
    if name in ("", ".", ".."):
        name = "object"
    encoded = name.encode("utf-8", "surrogateescape")
    if len(encoded) <= _MAX_NAME_BYTES:
        return name
    # keep up to two suffixes (.tar.gz) and shorten the stem
    stem, dot, suffix = name.partition(".")
    suffix = (dot + suffix)[-40:] if dot else ""
    room = _MAX_NAME_BYTES - len(suffix.encode("utf-8", "surrogateescape"))
    stem = encoded[:room].decode("utf-8", "ignore")
    return stem + suffix


def entry_name(url_text: str, name: str) -> str:
    """``<md5 of the normalised URL>.<object name>``: unique per URL, ends with the object's name."""
    digest = hashlib.md5(url_text.encode("utf-8", "surrogateescape"), usedforsecurity=False).hexdigest()
    return f"{digest}.{_safe_name(name)}"


def archive_folder_name(entry: str, name: str | None = None) -> str:
    """The folder an archive entry is extracted into (``name`` distinguishes several extractions)."""
    if not name:
        return entry + ARCHIVE_MARK
    safe = _safe_name(name)
    if len(safe) > 40:
        safe = hashlib.md5(safe.encode(), usedforsecurity=False).hexdigest()
    return f"{entry}{ARCHIVE_MARK}_{safe}"


def entry_guarding(name: str) -> str | None:
    """The entry whose lock guards ``name`` in a context folder, or None when the cache never
    writes a name of that shape (an entry, an extraction of one, a partial download, a temporary
    file of either).

    Entries are ``<32 hex digits>.<name>``; ClearML's are too, which is why the cache keeps to
    its own folder.
    """
    if name.startswith(PARTIAL_PREFIX):
        name = name[len(PARTIAL_PREFIX) :]
    elif name.startswith("." + PARTIAL_PREFIX) and name.endswith(TEMP_SUFFIX):
        # the driver's temporary file of a partial download: .<partial>.<random>.clearml-part
        name = name[len(PARTIAL_PREFIX) + 1 : -len(TEMP_SUFFIX)].rpartition(".")[0]
    elif name.startswith(EXTRACTING_PREFIX):  # an extraction under way (or killed)
        name = name[len(EXTRACTING_PREFIX) :]
    if _ENTRY_SHAPE.match(name) is None:
        return None
    return name.partition(ARCHIVE_MARK)[0]


_ENTRY_SHAPE = re.compile(r"[0-9a-f]{32}\.[^/]")


@functools.lru_cache(maxsize=256)
def context_folder_name(context: str | None) -> str:
    """The folder of a cache context (``None``: the default one), safe as a file name."""
    context = str(context or DEFAULT_CONTEXT)
    safe = _safe_name(context)
    if safe.startswith("."):
        safe = "_" + safe[1:]
    return safe


__all__ = [
    "ARCHIVE_MARK",
    "CACHE_FOLDER",
    "DEFAULT_CONTEXT",
    "INDEX_NAME",
    "LOCKS_FOLDER",
    "PARTIAL_PREFIX",
    "archive_folder_name",
    "context_folder_name",
    "entry_guarding",
    "entry_name",
]
