"""Matching configuration entries to a URL on path-segment boundaries; the most specific wins.

ClearML matches ``credentials`` entries (S3 buckets, GCS ``bucket/subdir``, Azure containers) and
``path_substitution`` rules with plain string prefixes, so an entry for ``data`` also answers for
``data-archive`` and ``/opt/mydir`` rewrites ``/opt/mydirnew/x``. Here a prefix matches only a
whole leading run of segments, and among several matches the longest one wins. The storage
plugins reuse these helpers for their own ``clearml.conf`` sections.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

T = TypeVar("T")

_SEPARATORS = ("/", "\\")


def segment_prefix_match(prefix: str, path: str, *, separators: tuple[str, ...] = _SEPARATORS) -> bool:
    """Whether ``prefix`` is ``path`` itself or a leading run of its segments.

    ``/opt/mydir`` matches ``/opt/mydir`` and ``/opt/mydir/x`` but not ``/opt/mydirnew/x``. A
    prefix that already ends in a separator (``s3://bucket/``) matches whatever starts with it.
    An empty prefix matches everything.
    """
    if not prefix:
        return True
    if not path.startswith(prefix):
        return False
    if len(path) == len(prefix) or prefix.endswith(separators):
        return True
    return path[len(prefix)] in separators


def specificity(prefix: str) -> tuple[int, int]:
    """How specific a prefix is: its number of segments, then its length."""
    stripped = prefix.strip("/\\")
    segments = len([s for s in stripped.replace("\\", "/").split("/") if s]) if stripped else 0
    return segments, len(prefix)


def best_match(
    candidates: Iterable[T],
    path: str,
    prefix_of: Callable[[T], str],
    *,
    separators: tuple[str, ...] = _SEPARATORS,
) -> T | None:
    """The candidate whose prefix matches ``path`` on segment boundaries with the most segments.

    Ties go to the earliest candidate, so the order of entries in ``clearml.conf`` still decides
    between two equally specific ones.
    """
    best: T | None = None
    best_rank: tuple[int, int] | None = None
    for candidate in candidates:
        prefix = prefix_of(candidate)
        if not segment_prefix_match(prefix, path, separators=separators):
            continue
        rank = specificity(prefix)
        if best_rank is None or rank > best_rank:
            best, best_rank = candidate, rank
    return best


def join_prefix(*parts: str | None) -> str:
    """``bucket`` + ``sub/dir`` → ``bucket/sub/dir``, ignoring empty parts and stray slashes."""
    return "/".join(part.strip("/") for part in parts if part and part.strip("/"))


def inherit(defaults: Mapping[str, Any], entry: Mapping[str, Any]) -> dict[str, Any]:
    """An entry with every unset field (missing, null or "") taken from the section's defaults.

    ClearML lets a bucket entry name only ``bucket`` and ``key`` and take ``region`` or
    ``verify`` from ``sdk.aws.s3``; nested lists of entries are never inherited.
    """
    merged = {key: value for key, value in defaults.items() if not isinstance(value, list)}
    for key, value in entry.items():
        if value is None or value == "":
            merged.setdefault(key, value)
            continue
        merged[key] = value
    return merged


__all__ = ["best_match", "inherit", "join_prefix", "segment_prefix_match", "specificity"]
