"""Conda channels: names to URLs, and the identity of the repository data a solve reads.

A channel is a name (``conda-forge``: ``https://conda.anaconda.org/conda-forge``), ``defaults``
(Anaconda's ``pkgs/main`` and ``pkgs/r``), a URL, or a local folder. Each has one
``repodata.json`` per subdir (``linux-64``, ``noarch``).

The identity of a subdir's repository data is what the solve cache is keyed on, computed without
the network and without rattler:

* a local channel: the size and modification time of its ``repodata*`` files;
* a remote one: the hash rattler recorded when it downloaded its ``repodata.json`` into the
  repodata cache (``<hash>.info.json``), as long as that copy is fresh by the server's
  ``Cache-Control: max-age``. A stale or missing copy has no identity: the solver's gateway
  revalidates it first (a conditional request: nothing is downloaded again when it did not change).
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import unquote, urlsplit

CHANNEL_ALIAS = "https://conda.anaconda.org"
DEFAULTS = ("https://repo.anaconda.com/pkgs/main", "https://repo.anaconda.com/pkgs/r")
"""What conda's ``defaults`` stands for on Linux and macOS."""
REPODATA_FILES = ("repodata.json", "repodata.json.zst", "repodata.json.bz2", "repodata_shards.msgpack.zst")
_URL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")
_MAX_AGE = re.compile(r"max-age\s*=\s*(\d+)")


def channel_url(name: str) -> list[str]:
    """The URLs a channel name stands for (``defaults`` is two)."""
    text = name.strip().rstrip("/")
    if text == "defaults":
        return list(DEFAULTS)
    if _URL.match(text):
        return [text]
    if text.startswith(("/", "./", "../", "~")) or (os.sep in text and Path(text).exists()):
        return [Path(text).expanduser().absolute().as_uri()]
    return [f"{CHANNEL_ALIAS}/{text}"]


def channel_urls(names: Iterable[str], *, no_defaults: bool = False) -> tuple[str, ...]:
    """The channels' URLs in priority order, each once; ``no_defaults`` leaves ``defaults`` out."""
    urls: list[str] = []
    for name in names:
        if no_defaults and name.strip() == "defaults":
            continue
        urls += channel_url(name)
    return tuple(dict.fromkeys(urls))


def is_local(url: str) -> bool:
    return url.startswith("file:")


def local_path(url: str) -> Path:
    return Path(unquote(urlsplit(url).path))


class RepodataCache:
    """What rattler's repodata cache (a folder of ``<hash>.json`` + ``<hash>.info.json``) holds."""

    def __init__(self, folder: Path | None) -> None:
        self.folder = folder
        self._infos: dict[str, tuple[float, dict[str, object]]] | None = None

    def _read(self) -> dict[str, tuple[float, dict[str, object]]]:
        if self._infos is not None:
            return self._infos
        infos: dict[str, tuple[float, dict[str, object]]] = {}
        try:
            entries = list(os.scandir(self.folder)) if self.folder is not None else []
        except OSError:
            entries = []
        for entry in entries:
            if not entry.name.endswith(".info.json"):
                continue
            try:
                data = json.loads(Path(entry.path).read_text(encoding="utf-8"))
                stamp = entry.stat().st_mtime
            except (OSError, ValueError):
                continue
            if isinstance(data, dict) and isinstance(data.get("url"), str):
                infos[data["url"]] = (stamp, data)
        self._infos = infos
        return infos

    def identity(self, url: str, subdir: str, *, fresh_only: bool = True) -> str | None:
        """The identity of a remote subdir's cached repodata: None when there is no copy, or
        (``fresh_only``) when the copy is stale by its ``Cache-Control: max-age``."""
        found = self._read().get(f"{url.rstrip('/')}/{subdir}/repodata.json")
        if found is None:
            return None
        stamp, info = found
        if fresh_only:
            match = _MAX_AGE.search(str(info.get("cache_control") or ""))
            if not match or time.time() >= stamp + int(match.group(1)):
                return None
        digest = info.get("blake2_hash") or info.get("etag") or info.get("mod")
        return f"cached:{digest}" if digest else None


def local_identity(url: str, subdir: str) -> str:
    """Size and modification time of a local channel subdir's repodata files ("absent": none)."""
    folder = local_path(url) / subdir
    parts = []
    for name in REPODATA_FILES:
        try:
            status = os.stat(folder / name)
        except OSError:
            continue
        parts.append(f"{name}:{status.st_size}:{status.st_mtime_ns}")
    return ",".join(parts) or "absent"


def identities(
    channels: Iterable[str], subdirs: Iterable[str], cache: RepodataCache, *, fetched: bool = False
) -> dict[str, str] | None:
    """``{"<url>/<subdir>": identity}`` of every channel and subdir. Without ``fetched``, None when
    a remote one has no fresh cached copy (the gateway must look first); with it (the gateway just
    looked), a remote subdir it found nothing for is "absent"."""
    found: dict[str, str] = {}
    subdirs = tuple(subdirs)
    for url in channels:
        for subdir in subdirs:
            if is_local(url):
                found[f"{url}/{subdir}"] = local_identity(url, subdir)
                continue
            identity = cache.identity(url, subdir, fresh_only=not fetched)
            if identity is None:
                if not fetched:
                    return None
                identity = "absent"
            found[f"{url}/{subdir}"] = identity
    return found
