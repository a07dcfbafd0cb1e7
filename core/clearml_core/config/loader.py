"""Loading clearml.conf: defaults files → the user's file → environment overrides.

The caller names the defaults files: this package knows how configuration is read, not which
plugins are installed. :mod:`clearml_core.settings` passes the core's and the plugins' files and
keeps the process-wide configuration.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import shlex
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from clearml_core.config.coerce import BOOL_WORDS, CoercionError, coerce_like
from clearml_core.config.environment import CONFIG_FILE_VARIABLE, overrides
from clearml_core.config.fixed_env import FIXED_VARIABLES
from clearml_core.config.origins import key_lines, line_of
from clearml_core.config.redact import mask_value, redactor
from clearml_core.config.syntax import bad_include, include_line, syntax_error_message
from clearml_core.config.tree import _MISSING, Config, leaves, lookup, split_key
from clearml_core.errors import ConfigError

DEFAULT_CONFIG_FILE = "~/clearml.conf"


def config_file_path(environ: Mapping[str, str] | None = None) -> tuple[Path, bool]:
    """The user's clearml.conf, and whether it was named explicitly (then it must exist)."""
    environ = os.environ if environ is None else environ
    named = environ.get(CONFIG_FILE_VARIABLE, "").strip()
    if named:
        return Path(named).expanduser(), True
    return Path(DEFAULT_CONFIG_FILE).expanduser(), False


def parse_hocon_file(path: Path) -> dict[str, Any]:
    """Parse one HOCON file; any problem becomes a one-line :class:`ConfigError` naming file and line."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"configuration file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) else "it is not UTF-8 text"
        raise ConfigError(f"cannot read configuration file {path}: {reason}") from None
    if path.suffix == ".json":  # JSON is HOCON without its extras: read it without the HOCON parser
        try:
            data = json.loads(text)
        except ValueError as error:
            line = getattr(error, "lineno", 0)
            raise ConfigError(f"{path}:{line}: not valid JSON: {getattr(error, 'msg', error)}") from None
        if not isinstance(data, dict):
            raise ConfigError(
                f"{path}: a configuration file holds an object {{ … }}, not {type(data).__name__}"
            )
        return data
    from pyhocon import ConfigFactory
    from pyhocon.exceptions import ConfigException
    from pyparsing import ParseBaseException

    include = bad_include(text)
    if include is not None:
        raise ConfigError(f"{path}:{include[0]}: {include[1]}")
    try:
        with _missing_includes_reported(path, text):
            tree = ConfigFactory.parse_string(text, basedir=str(path.parent), resolve=True)
    except ParseBaseException as error:
        raise ConfigError(syntax_error_message(path, text, error)) from None
    except ConfigException as error:
        raise ConfigError(f"{path}{_substitution_problem(str(error))}") from None
    except OSError as error:  # include required("…") of a file that is missing or unreadable
        target = str(error.filename or "")
        line = include_line(text, target)
        problem = (
            "does not exist" if isinstance(error, FileNotFoundError) else f"cannot be read ({error.strerror})"
        )
        raise ConfigError(
            f"{path}{f':{line}' if line else ''}: the included file {target} {problem}"
        ) from None
    return tree.as_plain_ordered_dict() if hasattr(tree, "as_plain_ordered_dict") else dict(tree)


class _IncludeWarnings(logging.Handler):
    """Turns pyhocon's raw "Cannot include file" record into one of ours naming file and line."""

    def __init__(self, path: Path, text: str) -> None:
        super().__init__(logging.WARNING)
        self.path, self.text = path, text

    def emit(self, record: logging.LogRecord) -> None:
        target = str(record.args[0]) if isinstance(record.args, tuple) and record.args else "?"
        line = include_line(self.text, target)
        logging.getLogger("clearml_core.config").warning(
            '%s%s: the included file %s does not exist; skipped (write include required("…") '
            "to make that an error)",
            self.path,
            f":{line}" if line else "",
            target,
        )


@contextlib.contextmanager
def _missing_includes_reported(path: Path, text: str) -> Iterator[None]:
    """HOCON skips a missing optional include; pyhocon says so raw on stderr, this says it our way."""
    logger = logging.getLogger("pyhocon.config_parser")
    handler = _IncludeWarnings(path, text)
    propagate = logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate


def _substitution_problem(message: str) -> str:
    where = re.search(r"line:\s*(\d+)", message)
    variable = re.search(r"\$\{\??([^}]+)\}", message)
    line = f":{where.group(1)}" if where else ""
    if variable and "resolve" in message.lower():
        name = variable.group(1).strip()
        return (
            f"{line}: ${{{name}}} is not set; export {name}, define it in the file, "
            f"or write ${{?{name}}} to make it optional"
        )
    return f"{line}: {message}"


def merge_layer(base: dict[str, Any], layer: Mapping[str, Any]) -> None:
    """HOCON merge: objects merge key by key, anything else replaces."""
    for key, value in layer.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            merge_layer(base[key], value)
        else:
            base[key] = _plain(value)


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _set(tree: dict[str, Any], key: str, value: Any) -> str:
    """Set a dotted key, matching existing keys case-insensitively; returns the key as stored."""
    node = tree
    stored = []
    parts = split_key(key)
    for index, part in enumerate(parts):
        match = next((k for k in node if k.lower() == part.lower()), part) if isinstance(node, dict) else part
        stored.append(match)
        if index == len(parts) - 1:
            node[match] = value
        else:
            if not isinstance(node.get(match), dict):
                node[match] = {}
            node = node[match]
    return ".".join(stored)


# Boolean settings that ClearML also accepts as a path (a CA bundle to verify against).
BOOL_OR_PATH_KEYS = {"api.verify_certificate"}
# List settings whose variables are comma-separated; other list variables split like a shell line.
COMMA_SEPARATED_VARIABLES = {"CLEARML_LOG_ENVIRONMENT", "CLEARML_API_EXTRA_RETRY_CODES"}


def _split_list_variable(name: str, value: str) -> list[str]:
    if name in COMMA_SEPARATED_VARIABLES:
        return [part.strip() for part in value.split(",") if part.strip()]
    return shlex.split(value)


def typed_layer(defaults: dict[str, Any], layer: dict[str, Any], origins: dict[str, str]) -> None:
    """Coerce every value of a layer to its default's type, in place; mistakes are errors."""
    for key, value in list(leaves(layer)):
        default = lookup(defaults, key)
        if default is _MISSING or value is None:
            continue
        if key in BOOL_OR_PATH_KEYS and isinstance(value, str) and value.strip().lower() not in BOOL_WORDS:
            continue
        try:
            coerced = coerce_like(default, value)
        except CoercionError as error:
            shown = mask_value(key.rsplit(".", 1)[-1], value)
            raise ConfigError(
                f"{origins.get(key, 'configuration')}: {key} must be {error.expected}, got {shown!r}"
            ) from None
        if coerced is not value:
            _set(layer, key, coerced)


def load_defaults(files: Iterable[Path]) -> dict[str, Any]:
    """The merged defaults of ``files``, in order (:func:`clearml_core.settings.default_files`
    names the core's and every plugin's)."""
    values: dict[str, Any] = {}
    for path in files:
        if not path.is_file():
            # a plugin that names a defaults file it does not ship is reported, not fatal (DESIGN §3)
            logging.getLogger("clearml_core.config").warning(
                "defaults file %s does not exist (its plugin is broken); skipped", path
            )
            continue
        merge_layer(values, _parse_defaults_file(path))
    return values


NOT_USED_KEYS_FILE = Path(__file__).parent / "clearml_keys.conf"


def load_not_used_keys() -> dict[str, Any]:
    """ClearML keys that clearml-core knows but does not use (``clearml_keys.conf``), with their
    defaults: a schema for typing and ``config validate``, never merged into the values."""
    return _parse_defaults_file(NOT_USED_KEYS_FILE)


def _defaults_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "clearml-core" / "defaults"


def _parse_defaults_file(path: Path) -> dict[str, Any]:
    """Parse a defaults file through a JSON cache: pyhocon needs ~2 ms a line, JSON microseconds.

    Defaults files hold no secrets and no substitutions; the cache key is the file's path, size
    and modification time, so an edited or reinstalled file is parsed again.
    """
    status = path.stat()
    key = hashlib.sha256(f"{path.resolve()}|{status.st_size}|{status.st_mtime_ns}".encode()).hexdigest()
    if key in _parsed_defaults:
        return _parsed_defaults[key]
    cached = _defaults_cache_dir() / f"{key[:32]}.json"
    try:
        parsed = dict(json.loads(cached.read_text(encoding="utf-8")))
    except (OSError, ValueError):
        parsed = _parse_and_store(path, cached)
    _parsed_defaults[key] = parsed
    return parsed


# Parsed defaults by file identity; read-only (merging copies what it takes).
_parsed_defaults: dict[str, dict[str, Any]] = {}


def _parse_and_store(path: Path, cached: Path) -> dict[str, Any]:
    parsed = parse_hocon_file(path)
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        temporary = cached.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_text(json.dumps(parsed, default=str), encoding="utf-8")
        os.replace(temporary, cached)
    except OSError:
        pass  # a read-only home only costs the parse next time
    return parsed


def load_config(
    config_file: str | Path | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    defaults: Iterable[Path],
) -> Config:
    """Load the configuration the way ClearML does, over the defaults files ``defaults``.

    ``config_file`` overrides ``CLEARML_CONFIG_FILE`` / ``~/clearml.conf``. The process's
    configuration, over the core's and the plugins' defaults, is
    :func:`clearml_core.settings.get_config`.
    """
    environ = os.environ if environ is None else environ
    default_values = load_defaults(defaults)
    values = _plain(default_values)
    # what user values are typed against: the defaults, and the ClearML keys that are not used
    schema = _plain(load_not_used_keys())
    merge_layer(schema, default_values)

    origins: dict[str, str] = {}
    files: list[Path] = []
    if config_file is not None:
        path, required = Path(config_file).expanduser(), True
    else:
        path, required = config_file_path(environ)
    if required or path.exists():
        user = parse_hocon_file(path)
        lines = key_lines(path.read_text(encoding="utf-8"))
        for key, _value in leaves(user):
            line = line_of(lines, key)
            origins[key] = f"{path}:{line}" if line else str(path)
        typed_layer(schema, user, origins)
        merge_layer(values, user)
        files.append(path)

    env_layer: dict[str, Any] = {}
    for name, key, value in overrides(environ, lambda key: isinstance(lookup(schema, key), str)):
        if name in FIXED_VARIABLES and isinstance(value, str) and isinstance(lookup(schema, key), list):
            value = _split_list_variable(name, value)
        stored = _set(env_layer, key, value)
        origins[stored] = f"env {name}"
    typed_layer(schema, env_layer, origins)
    merge_layer(values, env_layer)

    redactor.add_tree(values)
    return Config(values, origins, files)
