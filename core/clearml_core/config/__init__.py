"""clearml.conf: loading (pyhocon), environment overrides, typed access, origins and redaction.

This package reads configuration over the defaults files its caller names and imports nothing of
the plugin registry. The configuration a process runs with — over the core's and every plugin's
defaults — is :func:`clearml_core.settings.get_config`.
"""

from __future__ import annotations

from clearml_core.config.loader import config_file_path, load_defaults, parse_hocon_file
from clearml_core.config.tree import Config

__all__ = [
    "Config",
    "config_file_path",
    "load_defaults",
    "parse_hocon_file",
]
