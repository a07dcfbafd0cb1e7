"""The loaded configuration: merged values, where each came from, and typed accessors."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from clearml_core.config.coerce import CoercionError, to_bool, to_float, to_int
from clearml_core.config.redact import PrintoutRules, mask_tree, mask_value
from clearml_core.errors import ConfigError

_MISSING: Any = object()


def split_key(key: str) -> list[str]:
    return [part for part in key.split(".") if part]


def lookup(tree: Any, key: str) -> Any:
    node = tree
    for part in split_key(key):
        if not isinstance(node, dict) or part not in node:
            return _MISSING
        node = node[part]
    return node


def leaves(tree: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(dotted key, value) of every non-object value; lists count as values."""
    if isinstance(tree, dict) and tree:
        for key, value in tree.items():
            yield from leaves(value, f"{prefix}.{key}" if prefix else str(key))
    elif prefix:
        yield prefix, tree


class Config:
    """Read-only view of clearml.conf after defaults, the user's file and env overrides."""

    def __init__(self, values: dict[str, Any], origins: dict[str, str], files: list[Path]) -> None:
        self._values = values
        self._origins = origins
        self.files = files
        """The user configuration files that were read (none when only defaults apply)."""

    def get(self, key: str, default: Any = None) -> Any:
        """The value at a dotted key, or ``default`` when it is not set (or null)."""
        value = lookup(self._values, key)
        return default if value is _MISSING or value is None else copy.deepcopy(value)

    def __contains__(self, key: str) -> bool:
        return lookup(self._values, key) is not _MISSING

    def _typed(self, key: str, default: Any, convert: Any) -> Any:
        value = self.get(key)
        if value is None:
            return default
        try:
            return convert(value)
        except CoercionError as error:
            shown = mask_value(key.rsplit(".", 1)[-1], value)
            raise ConfigError(f"{self.origin(key)}: {key} must be {error.expected}, got {shown!r}") from None

    def get_str(self, key: str, default: str | None = None) -> str | None:
        return self._typed(key, default, str)

    def get_int(self, key: str, default: int | None = None) -> int | None:
        return self._typed(key, default, to_int)

    def get_float(self, key: str, default: float | None = None) -> float | None:
        return self._typed(key, default, to_float)

    def get_bool(self, key: str, default: bool = False) -> bool:
        return bool(self._typed(key, default, to_bool))

    def get_list(self, key: str) -> list[Any]:
        value = self.get(key)
        if value is None:
            return []
        return value if isinstance(value, list) else [value]

    def get_dict(self, key: str) -> dict[str, Any]:
        value = self.get(key)
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise ConfigError(f"{self.origin(key)}: {key} must be an object {{ … }}, got {value!r}")
        return value

    def path(self, key: str, default: str | None = None) -> Path | None:
        """A filesystem path setting with ``~`` expanded."""
        value = self.get_str(key, default)
        return Path(value).expanduser() if value else None

    def origin(self, key: str) -> str:
        """Where the value at ``key`` came from: ``default``, ``FILE:LINE`` or ``env NAME``."""
        parts = split_key(key)
        while parts:
            found = self._origins.get(".".join(parts))
            if found:
                return found
            parts.pop()
        return "default"

    def as_dict(self, *, masked: bool = False) -> dict[str, Any]:
        values = copy.deepcopy(self._values)
        return mask_tree(values, rules=self.printout_rules()) if masked else values

    def masked(self, key: str) -> Any:
        """The value at ``key`` as printed: secrets masked, ``agent.sanitize_config_printout`` applied."""
        return mask_tree(self.get(key), key, self.printout_rules())

    def printout_rules(self) -> PrintoutRules:
        """What ``agent.sanitize_config_printout`` hides when the configuration is printed."""
        return PrintoutRules.from_tree(self._values)

    def leaves(self) -> Iterator[tuple[str, Any]]:
        return leaves(self._values)
