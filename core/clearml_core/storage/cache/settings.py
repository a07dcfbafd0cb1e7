"""The cache's configuration: where it lives (``CLEARML_CACHE_DIR``, ``sdk.storage.cache.*``) and its limits."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from clearml_core.config import Config

CACHE_DIR_VARIABLE = "CLEARML_CACHE_DIR"
DEFAULT_BASE_DIR = "~/.clearml-core/cache"
DEFAULT_FILE_LIMIT = 100


@dataclass(frozen=True)
class CacheSettings:
    """The cache's configuration, read once per loaded clearml.conf."""

    base_dir: Path
    default_file_limit: int = DEFAULT_FILE_LIMIT
    max_used_bytes: int = -1
    min_free_bytes: int = 0
    cleanup_margin_percent: float = 5.0
    zero_file_size_check: bool = False
    fsync: bool = False

    @classmethod
    def from_config(cls, config: Config) -> CacheSettings:
        size = "sdk.storage.cache.size"
        return cls(
            base_dir=cache_base_dir(config),
            default_file_limit=config.get_int("sdk.storage.cache.default_cache_manager_size", None)
            or DEFAULT_FILE_LIMIT,
            max_used_bytes=_int(config, f"{size}.max_used_bytes", -1),
            min_free_bytes=max(0, _int(config, f"{size}.min_free_bytes", 0)),
            cleanup_margin_percent=max(0.0, config.get_float(f"{size}.cleanup_margin_percent", 5.0) or 0.0),
            zero_file_size_check=config.get_bool("sdk.storage.cache.zero_file_size_check", False),
            fsync=config.get_bool("sdk.storage.cache.fsync", False),
        )


def _int(config: Config, key: str, default: int) -> int:
    value = config.get_int(key, default)
    return default if value is None else value


def cache_base_dir(config: Config | None = None) -> Path:
    """``CLEARML_CACHE_DIR`` → ``sdk.storage.cache.default_base_dir`` → ``~/.clearml-core/cache``."""
    named = os.environ.get(CACHE_DIR_VARIABLE, "").strip()
    if not named and config is not None:
        named = (config.get_str("sdk.storage.cache.default_base_dir") or "").strip()
    return Path(os.path.expandvars(named or DEFAULT_BASE_DIR)).expanduser().absolute()


__all__ = ["CACHE_DIR_VARIABLE", "DEFAULT_BASE_DIR", "DEFAULT_FILE_LIMIT", "CacheSettings", "cache_base_dir"]
