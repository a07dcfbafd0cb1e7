"""pip's own index settings, read the way pip reads them, so uv installs see the same indexes.

uv ignores pip's configuration; with ``type: pip`` installing through uv, the machine's
``pip.conf`` (a company mirror, a ``find-links`` folder) must still apply. Read, in pip's order
(later wins): ``$XDG_CONFIG_DIRS/pip/pip.conf``, ``/etc/pip.conf``, ``~/.pip/pip.conf``,
``~/.config/pip/pip.conf``, then ``PIP_CONFIG_FILE`` (``os.devnull`` turns files off); in each,
``[global]`` then ``[install]``. ``PIP_*`` variables override the files. Only the index keys are
read: ``index-url``, ``extra-index-url``, ``find-links``, ``no-index``, ``trusted-host``.
"""

from __future__ import annotations

import configparser
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

_KEYS = ("index-url", "extra-index-url", "find-links", "no-index", "trusted-host")
_TRUE = {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class IndexConfig:
    """Where packages come from."""

    index_url: str = ""
    extra_index_urls: tuple[str, ...] = ()
    find_links: tuple[str, ...] = ()
    no_index: bool = False
    trusted_hosts: tuple[str, ...] = ()


def config_files(environ: Mapping[str, str]) -> list[Path]:
    """pip's configuration files that apply, lowest priority first."""
    chosen = environ.get("PIP_CONFIG_FILE")
    if chosen is not None and chosen == os.devnull:
        return []
    files: list[Path] = []
    xdg_dirs = environ.get("XDG_CONFIG_DIRS") or "/etc/xdg"
    files += [Path(folder) / "pip" / "pip.conf" for folder in xdg_dirs.split(os.pathsep) if folder]
    files.append(Path("/etc/pip.conf"))
    home = Path(environ.get("HOME") or os.path.expanduser("~"))
    files.append(home / ".pip" / "pip.conf")
    files.append(Path(environ.get("XDG_CONFIG_HOME") or home / ".config") / "pip" / "pip.conf")
    if chosen:
        files.append(Path(chosen))
    return files


def read_index_config(environ: Mapping[str, str] | None = None) -> IndexConfig:
    """pip's index settings as pip would use them for ``pip install``."""
    environ = os.environ if environ is None else environ
    values: dict[str, str] = {}
    for path in config_files(environ):
        if not path.is_file():
            continue
        parser = configparser.RawConfigParser()
        try:
            parser.read(path, encoding="utf-8")
        except (configparser.Error, OSError, UnicodeDecodeError):
            continue
        for section in ("global", "install"):
            if parser.has_section(section):
                for key in _KEYS:
                    if parser.has_option(section, key):
                        values[key] = parser.get(section, key)
    for key in _KEYS:
        variable = "PIP_" + key.upper().replace("-", "_")
        if variable in environ:
            values[key] = environ[variable]
    return IndexConfig(
        index_url=values.get("index-url", "").strip(),
        extra_index_urls=tuple(values.get("extra-index-url", "").split()),
        find_links=tuple(values.get("find-links", "").split()),
        no_index=values.get("no-index", "").strip().lower() in _TRUE,
        trusted_hosts=tuple(values.get("trusted-host", "").split()),
    )
