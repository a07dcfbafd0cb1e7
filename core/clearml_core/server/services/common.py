"""What several services do to a request: filters by ClearML's rules, paging, field projection."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from clearml_core.server.endpoints import Call
from clearml_core.server.errors import api_error


def name_matcher(pattern: str | None) -> re.Pattern[str] | None:
    """ClearML's ``name`` filter: a regular expression searched in the name, case-insensitively."""
    if not pattern:
        return None
    try:
        return re.compile(pattern, re.IGNORECASE)
    except re.error as error:
        raise api_error("invalid_regex_error", str(error), name=pattern) from None


def tags_match(have: Iterable[str], wanted: Sequence[str]) -> bool:
    """ClearML's tag filters: ``tag`` must be there (any of them), ``-tag`` must not."""
    present = set(have)
    include = [tag for tag in wanted if tag and not tag.startswith("-") and tag != "__$not"]
    exclude = [tag[1:] for tag in wanted if tag.startswith("-")]
    if any(tag in present for tag in exclude):
        return False
    return not include or any(tag in present for tag in include)


def project(doc: Mapping[str, Any], only_fields: Sequence[str]) -> dict[str, Any]:
    """``doc`` cut down to ``only_fields`` (dotted paths); ``id`` always stays."""
    if not only_fields:
        return dict(doc)
    result: dict[str, Any] = {"id": doc.get("id")}
    for path in only_fields:
        parts = str(path).split(".")
        source: Any = doc
        for part in parts:
            if not isinstance(source, Mapping) or part not in source:
                source = _MISSING
                break
            source = source[part]
        if source is _MISSING:
            continue
        target = result
        for part in parts[:-1]:
            target = target.setdefault(part, {})
        target[parts[-1]] = source
    return result


_MISSING = object()


def order(items: list[dict[str, Any]], order_by: Sequence[str]) -> list[dict[str, Any]]:
    """Sorted by ClearML's ``order_by`` (``-field`` for descending), missing values last."""
    for key in reversed([str(k) for k in order_by if k]):
        descending = key.startswith("-")
        field = key.lstrip("-+")
        present = [item for item in items if item.get(field) is not None]
        missing = [item for item in items if item.get(field) is None]
        present.sort(key=lambda item: _sortable(item.get(field)), reverse=descending)
        items = present + missing
    return items


def _sortable(value: Any) -> Any:
    return value if isinstance(value, (int, float)) else str(value).lower()


def page(call: Call, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``page`` / ``page_size`` (or ``size``) of ClearML's paged listings."""
    size = call.data.get("page_size") or call.data.get("size")
    number = call.data.get("page") or 0
    if size is None:
        return items
    if not isinstance(size, int) or not isinstance(number, int) or size < 0 or number < 0:
        raise api_error("fields_value_error", "page and page_size must be non-negative integers")
    return items[number * size : (number + 1) * size]
