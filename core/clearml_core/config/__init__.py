"""clearml.conf: loading (pyhocon), environment overrides, typed access, origins and redaction."""

from __future__ import annotations

from clearml_core.config.loader import (
    config_file_path,
    get_config,
    load_config,
    load_defaults,
    parse_hocon_file,
    reset_config,
)
from clearml_core.config.tree import Config
from clearml_core.config.validate import validate_file

__all__ = [
    "Config",
    "config_file_path",
    "get_config",
    "load_config",
    "load_defaults",
    "parse_hocon_file",
    "reset_config",
    "validate_file",
]
