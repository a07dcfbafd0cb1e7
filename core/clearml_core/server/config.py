"""The server's configuration, read the way ClearML server reads its own.

* **Files.** Every ``*.conf`` in a configuration folder, its path naming its key:
  ``apiserver.conf`` → ``apiserver.*``, ``services/tasks.conf`` → ``services.tasks.*`` (and
  ``services.conf`` holds the same keys as the ``services/`` folder's files). The folders are
  ``/opt/clearml/config``, or the ``:``-separated list in ``CLEARML_CONFIG_DIR``; a later folder
  overrides an earlier one. The server's own defaults (``server/defaults``) come first.
* **Overrides.** ``CLEARML__<FILE>__<PATH>=value`` (``CLEARML__APISERVER__LISTEN__PORT=9008``): the
  path lower-cased, the value read as JSON (HOCON, its superset, so plain words work too) and
  typed by the default it replaces; a value that does not fit is an error naming the variable.
  Variables for other files (``CLEARML__SDK__…`` is clearml.conf's) are left alone.
* **Fixed variables.** ``CLEARML_REDIS_SERVICE_HOST`` / ``_PORT`` choose a Redis control plane (see
  :func:`clearml_core.controlplane.control_plane_url`); ``CLEARML_API_ACCESS_KEY`` /
  ``CLEARML_API_SECRET_KEY`` register an access key at start; ClearML server's MongoDB and
  Elasticsearch variables are read and reported as not used, since everything lives in the
  control plane.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from clearml_core.config import Config, parse_hocon_file
from clearml_core.config.environment import parse_override_value
from clearml_core.config.loader import merge_layer, typed_layer
from clearml_core.config.origins import key_lines, line_of
from clearml_core.config.tree import leaves, lookup
from clearml_core.errors import ConfigError

log = logging.getLogger("clearml_core.server")

DEFAULTS_DIR = Path(__file__).parent / "defaults"
DEFAULT_CONFIG_DIR = "/opt/clearml/config"
CONFIG_DIR_VARIABLES = ("CLEARML_CONFIG_DIR", "TRAINS_CONFIG_DIR")
OVERRIDE_PREFIXES = ("CLEARML__", "TRAINS__")
SERVER_FILES = ("apiserver", "fileserver", "hosts", "logging", "secure", "services", "webserver")
"""The top-level keys (file names) that are the server's; overrides of other keys are not its."""

NOT_USED_VARIABLES = (
    "CLEARML_MONGODB_SERVICE_HOST",
    "CLEARML_MONGODB_SERVICE_PORT",
    "CLEARML_ELASTIC_SERVICE_HOST",
    "CLEARML_ELASTIC_SERVICE_PORT",
)
"""ClearML server's database variables: read so a migrating deployment is told they do nothing."""


def config_dirs(environ: Mapping[str, str] | None = None) -> list[Path]:
    """The configuration folders, in order (a later one overrides an earlier one)."""
    environ = os.environ if environ is None else environ
    named = next((environ[name] for name in CONFIG_DIR_VARIABLES if environ.get(name)), None)
    if named is None:
        default = Path(DEFAULT_CONFIG_DIR)
        return [default] if default.is_dir() else []
    folders = [Path(os.path.expandvars(part)).expanduser() for part in named.split(os.pathsep) if part]
    missing = [str(folder) for folder in folders if not folder.is_dir()]
    if missing:
        variable = next(name for name in CONFIG_DIR_VARIABLES if environ.get(name))
        raise ConfigError(
            f"{variable} names {', '.join(missing)}, which {'is not a folder' if len(missing) == 1 else 'are not folders'}; "
            f"create {'it' if len(missing) == 1 else 'them'} or fix the list (folders separated by {os.pathsep!r})"
        )
    return folders


def _read_folder(folder: Path, values: dict[str, Any], origins: dict[str, str]) -> list[Path]:
    """Merge every ``*.conf`` under ``folder`` into ``values``; returns the files read."""
    files = sorted(folder.rglob("*.conf"), key=lambda path: (len(path.relative_to(folder).parts), str(path)))
    for path in files:
        prefix = ".".join(path.relative_to(folder).with_suffix("").parts)
        tree = parse_hocon_file(path)
        lines = key_lines(path.read_text(encoding="utf-8"))
        for key, _value in leaves(tree):
            line = line_of(lines, key)
            origins[f"{prefix}.{key}"] = f"{path}:{line}" if line else str(path)
        layer: dict[str, Any] = {}
        node = layer
        parts = prefix.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = tree
        merge_layer(values, layer)
    return files


def _overrides(environ: Mapping[str, str], schema: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    layer: dict[str, Any] = {}
    origins: dict[str, str] = {}
    for name in sorted(environ):
        prefix = next((p for p in OVERRIDE_PREFIXES if name.upper().startswith(p)), None)
        if prefix is None:
            continue
        parts = [part.lower() for part in name[len(prefix) :].split("__") if part]
        if len(parts) < 2 or parts[0] not in SERVER_FILES:
            continue  # clearml.conf's (CLEARML__SDK__…, CLEARML__AGENT__…), not the server's
        key = ".".join(parts)
        value = parse_override_value(name, key, environ[name], text_key=isinstance(lookup(schema, key), str))
        node = layer
        for part in parts[:-1]:
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node = node[part]
        node[parts[-1]] = value
        origins[key] = f"env {name}"
    return layer, origins


def load_server_config(environ: Mapping[str, str] | None = None) -> Config:
    """The server's configuration: its defaults, the configuration folders, the overrides.

    A file that does not parse, a folder that does not exist, or a value that does not fit the
    type of its default is a :class:`~clearml_core.errors.ConfigError` naming where it is.
    """
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    origins: dict[str, str] = {}
    _read_folder(DEFAULTS_DIR, values, {})
    defaults = _copy(values)
    files: list[Path] = []
    for folder in config_dirs(environ):
        layer: dict[str, Any] = {}
        layer_origins: dict[str, str] = {}
        files.extend(_read_folder(folder, layer, layer_origins))
        typed_layer(defaults, layer, layer_origins)
        merge_layer(values, layer)
        origins.update(layer_origins)
    env_layer, env_origins = _overrides(environ, defaults)
    typed_layer(defaults, env_layer, env_origins)
    merge_layer(values, env_layer)
    origins.update(env_origins)
    return Config(values, origins, files)


def not_used_variables(environ: Mapping[str, str] | None = None) -> list[str]:
    """ClearML server's database variables that are set: this server has no use for them."""
    environ = os.environ if environ is None else environ
    return [name for name in NOT_USED_VARIABLES if environ.get(name)]


def _copy(tree: Any) -> Any:
    if isinstance(tree, dict):
        return {key: _copy(value) for key, value in tree.items()}
    if isinstance(tree, list):
        return [_copy(value) for value in tree]
    return tree


__all__ = ["DEFAULT_CONFIG_DIR", "config_dirs", "load_server_config", "not_used_variables"]
