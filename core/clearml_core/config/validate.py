"""``config validate``: keys nobody knows (with a "did you mean"), and ClearML keys that
clearml-core knows but does not use (``clearml_keys.conf``; one note per section)."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from clearml_core.config.loader import load_config, load_defaults, load_not_used_keys, parse_hocon_file
from clearml_core.config.origins import key_lines, line_of

NOT_USED_DOCS = 'docs/configuration.md, "ClearML settings clearml-core does not use"'
_LISTED_PER_NOTE = 6


@dataclass
class KeyReport:
    unknown: list[tuple[str, str | None]] = field(default_factory=list)
    """(dotted key, closest known key or None) for keys no schema has."""
    not_used: list[str] = field(default_factory=list)
    """Dotted keys (the highest level that is not used) found in clearml_keys.conf only."""


def _is_schema(node: Any) -> bool:
    # an empty object or a list in the schema is free-form: nothing under it is checked
    return isinstance(node, dict) and bool(node)


def classify_keys(
    defaults: Any, not_used: Any, user: Any, prefix: str = "", report: KeyReport | None = None
) -> KeyReport:
    """Sort the keys of ``user``: known to ``defaults``, known to ``not_used`` only, or unknown."""
    report = KeyReport() if report is None else report
    if not isinstance(user, dict) or not (_is_schema(defaults) or _is_schema(not_used)):
        return report
    defaults = defaults if isinstance(defaults, dict) else {}
    not_used = not_used if isinstance(not_used, dict) else {}
    for key, value in user.items():
        dotted = f"{prefix}.{key}" if prefix else key
        if key in defaults:
            classify_keys(defaults[key], not_used.get(key), value, dotted, report)
        elif key in not_used:
            report.not_used.append(dotted)
            # a misspelt key under a not-used section is still worth a warning
            classify_keys(None, not_used[key], value, dotted, KeyReport(report.unknown, []))
        else:
            known = list(dict.fromkeys([*defaults, *not_used]))
            close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
            suggestion = (f"{prefix}.{close[0]}" if prefix else close[0]) if close else None
            report.unknown.append((dotted, suggestion))
    return report


def unknown_keys(defaults: Any, user: Any, prefix: str = "") -> list[tuple[str, str | None]]:
    """(unknown dotted key, closest known key or None) for keys of ``user`` missing from ``defaults``."""
    return classify_keys(defaults, None, user, prefix).unknown


@dataclass(frozen=True)
class Validation:
    warnings: list[str]
    """Unknown keys, each with its place and a suggestion."""
    notes: list[str]
    """One line per section that sets ClearML keys clearml-core does not use."""


def check_file(path: str | Path, *, defaults: Iterable[Path]) -> Validation:
    """Load ``path`` fully over the defaults files ``defaults`` (mistakes raise
    :class:`ConfigError`) and say what in it is unknown to them or unused."""
    path = Path(path).expanduser()
    defaults = list(defaults)
    load_config(path, environ={}, defaults=defaults)
    lines = key_lines(path.read_text(encoding="utf-8"))
    report = classify_keys(load_defaults(defaults), load_not_used_keys(), parse_hocon_file(path))
    warnings = []
    for key, suggestion in report.unknown:
        line = line_of(lines, key)
        where = f"{path}:{line}" if line else str(path)
        hint = f"; did you mean {suggestion}?" if suggestion else ""
        warnings.append(f"{where}: unknown key {key}{hint}")
    sections: dict[str, list[str]] = {}
    for key in report.not_used:
        sections.setdefault(key.split(".", 1)[0], []).append(key)
    notes = []
    for section, keys in sections.items():
        listed = ", ".join(keys[:_LISTED_PER_NOTE]) + (
            f" and {len(keys) - _LISTED_PER_NOTE} more" if len(keys) > _LISTED_PER_NOTE else ""
        )
        notes.append(
            f"{path}: {section}: clearml-core knows but does not use {listed} (ClearML settings; "
            f"{NOT_USED_DOCS} says why)"
        )
    return Validation(warnings, notes)
