"""Typing configuration values by the type of their default."""

from __future__ import annotations

import re
from typing import Any

_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}
BOOL_WORDS = _TRUE | _FALSE


class CoercionError(ValueError):
    """``value`` cannot be read as the type ``expected`` names."""

    def __init__(self, expected: str, value: Any) -> None:
        super().__init__(f"must be {expected}, got {value!r}")
        self.expected = expected


def coerce_like(default: Any, value: Any) -> Any:
    """``value`` converted to the type of ``default``; anything goes where the default is null."""
    if default is None or value is None:
        return value
    if isinstance(default, bool):
        return to_bool(value)
    if isinstance(default, int):
        return to_int(value)
    if isinstance(default, float):
        return to_float(value)
    if isinstance(default, str):
        if isinstance(value, (dict, list)):
            raise CoercionError("a string", value)
        return (
            value if isinstance(value, str) else str(value).lower() if isinstance(value, bool) else str(value)
        )
    if isinstance(default, list):
        return value if isinstance(value, list) else [value]
    if isinstance(default, dict) and not isinstance(value, dict):
        raise CoercionError("an object { … }", value)
    return value


def to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise CoercionError("true or false", value)


_SIZE = re.compile(r"^\s*(?P<number>\d+(?:\.\d+)?)\s*(?P<unit>[kmgtp]i?b?|b|%)?\s*$", re.IGNORECASE)
_UNIT_POWERS = {"k": 1, "m": 2, "g": 3, "t": 4, "p": 5}


def to_int(value: Any) -> int:
    """An integer; text may carry a size unit (``10GB``, ``512 MiB``) or a percent sign (``5%``).

    Units follow the usual convention ClearML users write: ``KB``/``MB``/``GB`` are powers of
    1000, ``KiB``/``MiB``/``GiB`` powers of 1024.
    """
    if isinstance(value, bool):
        raise CoercionError("an integer", value)
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    match = _SIZE.match(str(value))
    if match is None:
        raise CoercionError("an integer", value)
    number, unit = float(match.group("number")), (match.group("unit") or "").lower()
    if unit and unit[0] in _UNIT_POWERS:
        number *= (1024 if "i" in unit else 1000) ** _UNIT_POWERS[unit[0]]
    if not number.is_integer():
        raise CoercionError("an integer", value)
    return int(number)


def to_float(value: Any) -> float:
    if isinstance(value, bool):
        raise CoercionError("a number", value)
    try:
        return float(value)
    except (TypeError, ValueError):
        raise CoercionError("a number", value) from None
