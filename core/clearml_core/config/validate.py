"""``config validate``: keys the defaults do not know, with a "did you mean"."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

from clearml_core.config.loader import load_config, load_defaults, parse_hocon_file
from clearml_core.config.origins import key_lines, line_of


def unknown_keys(defaults: Any, user: Any, prefix: str = "") -> list[tuple[str, str | None]]:
    """(unknown dotted key, closest known key or None) for keys of ``user`` missing from ``defaults``.

    An empty object or a list in the defaults is free-form: nothing under it is checked.
    """
    found: list[tuple[str, str | None]] = []
    if not isinstance(user, dict) or not isinstance(defaults, dict) or not defaults:
        return found
    for key, value in user.items():
        dotted = f"{prefix}.{key}" if prefix else key
        if key in defaults:
            found.extend(unknown_keys(defaults[key], value, dotted))
            continue
        close = difflib.get_close_matches(key, list(defaults), n=1, cutoff=0.6)
        found.append((dotted, f"{prefix}.{close[0]}" if prefix and close else (close[0] if close else None)))
    return found


def validate_file(path: str | Path) -> list[str]:
    """Load ``path`` fully (mistakes raise :class:`ConfigError`) and return warnings about it."""
    path = Path(path).expanduser()
    load_config(path, environ={})
    lines = key_lines(path.read_text(encoding="utf-8"))
    warnings = []
    for key, suggestion in unknown_keys(load_defaults(), parse_hocon_file(path)):
        line = line_of(lines, key)
        where = f"{path}:{line}" if line else str(path)
        hint = f"; did you mean {suggestion}?" if suggestion else ""
        warnings.append(f"{where}: unknown key {key}{hint}")
    return warnings
