"""Path substitution and direct access (``sdk.storage.path_substitution`` / ``direct_access``).

Path substitution lets a task logged on one machine (``s3://bucket/datasets``, ``/mnt/nfs``) find
its files somewhere else at run time (``file:///data/datasets``). ClearML replaces the prefix as
plain text, so ``registered_prefix: "/opt/mydir"`` also rewrites ``/opt/mydirnew/x``; here a rule
applies only on path-segment boundaries, and when several apply the most specific one wins.

Direct access names the URLs that are used in place — never downloaded, never copied into the
cache — by globs on the URL (and on the content type where it is known). ``file://*`` is the
default, so local files and mounted shares are returned as they are.
"""

from __future__ import annotations

import fnmatch
import mimetypes
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from clearml_core.credentials.matching import best_match
from clearml_core.errors import ConfigError

if TYPE_CHECKING:
    from clearml_core.config import Config

SUBSTITUTION_KEY = "sdk.storage.path_substitution"
DIRECT_ACCESS_KEY = "sdk.storage.direct_access"


@dataclass(frozen=True)
class SubstitutionRule:
    """One ``path_substitution`` entry."""

    registered_prefix: str
    local_prefix: str
    replace_windows_sep: bool = False
    replace_linux_sep: bool = False

    def apply(self, url: str) -> str:
        """``url`` with the registered prefix replaced; separators fixed after the new prefix."""
        rest = url[len(self.registered_prefix) :]
        if self.replace_windows_sep:
            rest = rest.replace("\\", os.sep)
        if self.replace_linux_sep:
            rest = rest.replace("/", os.sep)
        return self.local_prefix + rest


def _flag(entry: dict[str, Any], name: str, where: str) -> bool:
    value = entry.get(name, False)
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "yes", "on", "1"):
        return True
    if text in ("false", "no", "off", "0", ""):
        return False
    raise ConfigError(f"{where}: {name} must be true or false, got {value!r}")


def substitution_rules(config: Config) -> tuple[SubstitutionRule, ...]:
    """The configured rules, checked: both prefixes set, not both separator switches on."""
    rules = []
    for index, entry in enumerate(config.get_list(SUBSTITUTION_KEY)):
        where = f"{config.origin(SUBSTITUTION_KEY)}: {SUBSTITUTION_KEY}[{index}]"
        if not isinstance(entry, dict):
            raise ConfigError(
                f"{where} must be an object {{ registered_prefix: …, local_prefix: … }}, got {entry!r}"
            )
        registered = entry.get("registered_prefix")
        local = entry.get("local_prefix")
        if not isinstance(registered, str) or not registered:
            raise ConfigError(
                f"{where}: registered_prefix is missing; name the prefix the URLs were logged with"
            )
        if not isinstance(local, str):
            raise ConfigError(
                f"{where}: local_prefix is missing; name the prefix to use instead of {registered!r}"
            )
        windows = _flag(entry, "replace_windows_sep", where)
        linux = _flag(entry, "replace_linux_sep", where)
        if windows and linux:
            raise ConfigError(
                f"{where}: replace_windows_sep and replace_linux_sep are both true; a rule can turn "
                "Windows separators into this machine's or Linux ones, not both — keep one"
            )
        rules.append(SubstitutionRule(registered, local, windows, linux))
    return tuple(rules)


def substitute(url: str, rules: Sequence[SubstitutionRule]) -> str:
    """Apply the most specific rule whose prefix matches ``url`` on a segment boundary."""
    if not rules:
        return url
    rule = best_match(rules, url, lambda r: r.registered_prefix)
    return rule.apply(url) if rule is not None else url


@dataclass(frozen=True)
class DirectAccessRule:
    """One ``direct_access`` entry: a glob on the URL and, optionally, one on the content type."""

    url: str = "*"
    content_type: str | None = None

    def matches(self, url: str, content_type: str | None) -> bool:
        if not fnmatch.fnmatchcase(url, self.url):
            return False
        if self.content_type is None:
            return True
        return content_type is not None and fnmatch.fnmatchcase(content_type, self.content_type)


DEFAULT_DIRECT_ACCESS = (DirectAccessRule("file://*"),)


def direct_access_rules(config: Config) -> tuple[DirectAccessRule, ...]:
    """The configured rules; ``file://*`` when the setting is absent (an empty list means none)."""
    if DIRECT_ACCESS_KEY not in config:
        return DEFAULT_DIRECT_ACCESS
    rules = []
    for index, entry in enumerate(config.get_list(DIRECT_ACCESS_KEY)):
        where = f"{config.origin(DIRECT_ACCESS_KEY)}: {DIRECT_ACCESS_KEY}[{index}]"
        if isinstance(entry, str):
            entry = {"url": entry}
        if not isinstance(entry, dict):
            raise ConfigError(f'{where} must be an object {{ url: "glob" }}, got {entry!r}')
        pattern = entry.get("url", "*")
        content_type = entry.get("content_type")
        if not isinstance(pattern, str) or (content_type is not None and not isinstance(content_type, str)):
            raise ConfigError(f"{where}: url and content_type must be glob strings, got {entry!r}")
        rules.append(DirectAccessRule(pattern or "*", content_type or None))
    return tuple(rules)


def guess_content_type(name: str) -> str | None:
    """The content type a file name suggests (``model.json`` → ``application/json``)."""
    return mimetypes.guess_type(name, strict=False)[0]


def is_direct(url: str, rules: Iterable[DirectAccessRule], content_type: str | None = None) -> bool:
    """Whether a URL (in its normalised text form) is to be used in place."""
    return any(rule.matches(url, content_type) for rule in rules)


__all__ = [
    "DirectAccessRule",
    "SubstitutionRule",
    "direct_access_rules",
    "guess_content_type",
    "is_direct",
    "substitute",
    "substitution_rules",
]
