"""Environment variables that override configuration values.

``CLEARML__SDK__AWS__S3__KEY=…`` sets ``sdk.aws.s3.key``; ``CLEARML_AGENT__AGENT__PACKAGE_MANAGER__TYPE``
sets ``agent.package_manager.type`` (the clearml-agent spelling). The path is matched
case-insensitively; the value is parsed as JSON when it is JSON (numbers, booleans, lists,
objects) and kept as a string otherwise. The fixed variables ClearML documents
(:data:`~clearml_core.config.fixed_env.FIXED_VARIABLES`) keep their text (``CUDA_VERSION=11.80``
is not a number; the key's default types it) and apply first, so the generic form wins.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

from clearml_core.config.fixed_env import FIXED_VARIABLES
from clearml_core.errors import ConfigError

OVERRIDE_PREFIXES = ("CLEARML_AGENT__", "CLEARML__")
CONFIG_FILE_VARIABLE = "CLEARML_CONFIG_FILE"


def parse_override_value(name: str, raw: str) -> Any:
    """JSON where the text is JSON; a value that starts like JSON but is broken is an error."""
    text = raw.strip()
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        if text[:1] in ("{", "[", '"'):
            raise ConfigError(
                f"environment variable {name} looks like JSON but does not parse ({error.msg} at "
                f"column {error.colno}); fix its value, or quote it as a JSON string"
            ) from None
        return raw


def overrides(environ: Mapping[str, str]) -> Iterator[tuple[str, str, Any]]:
    """(variable name, dotted key, value) for every override present in ``environ``."""
    for name, key in FIXED_VARIABLES.items():
        if environ.get(name, "") != "":
            yield name, key, environ[name]  # typed later from the key's default
    for name in sorted(environ):
        upper = name.upper()
        prefix = next((p for p in OVERRIDE_PREFIXES if upper.startswith(p)), None)
        if prefix is None:
            continue
        parts = [part for part in name[len(prefix) :].split("__") if part]
        if not parts:
            continue
        yield name, ".".join(part.lower() for part in parts), parse_override_value(name, environ[name])
