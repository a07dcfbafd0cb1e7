"""The configuration a clearml-core process runs with: clearml.conf over every defaults file.

:mod:`clearml_core.config` reads configuration — HOCON files, environment overrides, types,
origins, redaction — and knows nothing of plugins: its loader takes the defaults files from its
caller. Which defaults files exist is the plugin registry's knowledge (the core's own and each
plugin's, through ``clearml_config_defaults``). This module sits one layer above both: it asks the
registry for the files and hands them to the loader. So loading configuration never needs the
registry, the registry never needs the configuration, and neither imports the other.

Everything that wants "the configuration" — the storage layer, the credential chain, the agent,
the CLI — takes it from here::

    from clearml_core.settings import get_config

    config = get_config()                      # loaded once per process
    config.get_str("sdk.development.default_output_uri")
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from clearml_core.config import validate
from clearml_core.config.loader import load_config as _load_config
from clearml_core.config.tree import Config


def default_files() -> list[Path]:
    """The defaults files of the core and then of each plugin, in registration order."""
    from clearml_core.plugins import get_registry

    return get_registry().config_default_files()


def load_config(
    config_file: str | Path | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    defaults: Sequence[Path] | None = None,
) -> Config:
    """Load the configuration the way ClearML does, over the core's and the plugins' defaults.

    ``config_file`` overrides ``CLEARML_CONFIG_FILE`` / ``~/clearml.conf``. ``defaults`` replaces
    the defaults files that the plugins register (tests use it).
    """
    files = default_files() if defaults is None else defaults
    return _load_config(config_file, environ=environ, defaults=files)


_config: Config | None = None


def get_config() -> Config:
    """The process-wide configuration, loaded on first use."""
    global _config
    if _config is None:
        _config = load_config()
    return _config


def reset_config() -> None:
    """Forget the loaded configuration (tests; ``agent.reload_config``)."""
    global _config
    _config = None


def check_file(path: str | Path) -> validate.Validation:
    """``config validate``: load ``path`` fully (mistakes raise
    :class:`~clearml_core.errors.ConfigError`) and say which of its keys no defaults file knows,
    and which ClearML keys in it clearml-core does not use."""
    return validate.check_file(path, defaults=default_files())


def validate_file(path: str | Path) -> list[str]:
    """Load ``path`` fully (mistakes raise :class:`~clearml_core.errors.ConfigError`) and return
    warnings about it: unknown keys, each with its place and a suggestion."""
    return check_file(path).warnings


__all__ = ["check_file", "default_files", "get_config", "load_config", "reset_config", "validate_file"]
