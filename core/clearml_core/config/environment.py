"""Environment variables that override configuration values.

``CLEARML__SDK__AWS__S3__KEY=…`` sets ``sdk.aws.s3.key``; ``CLEARML_AGENT__AGENT__PACKAGE_MANAGER__TYPE``
sets ``agent.package_manager.type`` (the clearml-agent spelling). The path is matched
case-insensitively. The value is read as clearml-agent reads it: as the HOCON text after
``key:`` — ``[a, b]``, ``["a", "b"]``, ``{a: 1}``, ``4``, ``true``, ``eu-west-1``, ``"quoted"`` —
with three differences that keep a value from being silently changed: unquoted text is taken as
written (HOCON would cut it at ``#`` or ``//``), a key whose default is text keeps the digits of
a number (``00123``), and a value that is no HOCON at all but does not start like a list, an
object or a quoted string (``p@ss=w0rd``) is that text. Only a value that starts like one of
those and does not parse is an error. One variable sets one key: text that would set another
(``a\\nb: c``) is the text itself.

The fixed variables ClearML documents (:data:`~clearml_core.config.fixed_env.FIXED_VARIABLES`)
keep their text (``CUDA_VERSION=11.80`` is not a number; the key's default types it) and apply
first, so the generic form wins.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from clearml_core.config.fixed_env import FIXED_VARIABLES
from clearml_core.config.redact import mask_value
from clearml_core.errors import ConfigError

OVERRIDE_PREFIXES = ("CLEARML_AGENT__", "CLEARML__")
CONFIG_FILE_VARIABLE = "CLEARML_CONFIG_FILE"
_STRUCTURED_START = ("[", "{", '"')
_UNSET: Any = object()
"""The value of ``${?VAR}`` with ``VAR`` unset: no override at all."""


def parse_override_value(name: str, key: str, raw: str, *, text_key: bool = False) -> Any:
    """The value of variable ``name`` for ``key``; ``text_key``: the key's default is a string."""
    from pyhocon import ConfigFactory
    from pyhocon.exceptions import ConfigException
    from pyparsing import ParseBaseException

    text = raw.strip()
    try:
        tree = ConfigFactory.parse_string(f"value: {text}", resolve=True)
    except (ParseBaseException, ConfigException) as error:
        if not text.startswith(_STRUCTURED_START) and "${" not in text:
            return raw
        raise ConfigError(_problem(name, key, raw, error)) from None
    if list(tree.keys()) != ["value"]:
        return raw  # a newline and "other: key" in the value: it is text, not a second setting
    value = tree.get("value", _UNSET)
    if isinstance(value, str) and not text.startswith('"') and "${" not in text:
        return text
    if text_key and isinstance(value, (bool, int, float)):
        return text
    return value.as_plain_ordered_dict() if hasattr(value, "as_plain_ordered_dict") else value


def _problem(name: str, key: str, raw: str, error: Exception) -> str:
    from pyparsing import ParseBaseException

    from clearml_core.config.syntax import parse_reason

    shown = mask_value(key.rsplit(".", 1)[-1], raw)
    if isinstance(error, ParseBaseException):
        # the parsed text is "value: …"; columns past that prefix are the variable's own
        reason = parse_reason(error).replace("the value on this line", "the value")
    else:
        reason = "a ${VARIABLE} in it is not set"
    return (
        f"environment variable {name}={shown!r} does not parse as a HOCON value ({reason}); "
        'fix it, or quote it ("…") to set it as text'
    )


def overrides(
    environ: Mapping[str, str], is_text_key: Callable[[str], bool] = lambda key: False
) -> Iterator[tuple[str, str, Any]]:
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
        key = ".".join(part.lower() for part in parts)
        value = parse_override_value(name, key, environ[name], text_key=is_text_key(key))
        if value is not _UNSET:
            yield name, key, value
