"""Short, secret-safe descriptions of HOCON syntax errors.

pyparsing's own message can be a dump of the grammar (``Expected {: ... | {{'=' | ':' …``) that
tells a user nothing; these helpers turn an error into the few words that help — what was found
where, and what was expected when that is a single character — and print the offending line with
any secret value masked.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from clearml_core.config.redact import mask_url, mask_value

_KEY_VALUE_LINE = re.compile(r"^\s*(?P<key>[\w.\-\"]+)\s*(?P<sep>[:=])\s*(?P<value>.*)$")
_EXPECTED_ONE = re.compile(r"^Expected '(?P<what>[^']{1,3})'$")
_INCLUDE = re.compile(r"^\s*include\s+(?P<rest>.*?)\s*$")
_INCLUDE_FORMS = re.compile(r'^(required\s*\(\s*)?((file|url|package)\s*\(\s*)?"[^"]*"\s*\)?\s*\)?$')
_INCLUDE_NAME = re.compile(r'"(?P<name>[^"]*)"')
_OPENERS = {"}": "{", "]": "["}


def printable_line(line: str) -> str:
    """A file line for an error message, with the value masked when its key holds a secret."""
    match = _KEY_VALUE_LINE.match(line.strip())
    if match is None or not _holds_secret(line):
        return mask_url(line.strip())
    key = match.group("key").strip('"').rsplit(".", 1)[-1]
    masked = mask_value(key, match.group("value"))
    return f"{match.group('key')}{match.group('sep')} {masked}"


def _holds_secret(line: str) -> bool:
    match = _KEY_VALUE_LINE.match(line.strip())
    if match is None:
        return mask_url(line) != line
    key = match.group("key").strip('"').rsplit(".", 1)[-1]
    return bool(mask_value(key, match.group("value")) != match.group("value"))


def parse_reason(error: Any) -> str:
    """What a pyparsing error means, in a few words: ``unexpected '='``.

    The character found is named only when the line holds no secret (it could be one of its
    characters).
    """
    text: str = getattr(error, "pstr", "") or ""
    expected = _EXPECTED_ONE.match(str(error.msg))
    closer = expected.group("what") if expected else ""
    if error.loc >= len(text.rstrip()):
        if closer in _OPENERS:
            return f"a {_OPENERS[closer]!r} is never closed"
        return "the text ends too early"
    if _holds_secret(error.line):
        return "the value on this line does not parse"
    found = f"unexpected {text[error.loc]!r}"
    return f"{found} (a '[' is not closed)" if closer == "]" else found


def syntax_error_message(path: Path, text: str, error: Any) -> str:
    """``FILE:LINE: HOCON syntax error: REASON; the line reads: '…'`` (an include's file when it is there)."""
    where: Path | str = path
    if getattr(error, "pstr", text) != text:
        where = included_file(text, path.parent, error.pstr) or f"{path} (in a file it includes)"
    message = f"{where}:{error.lineno}: HOCON syntax error: {parse_reason(error)}"
    if error.line.strip():
        message += f"; the line reads: {printable_line(error.line)!r}"
    return message


def bad_include(text: str) -> tuple[int, str] | None:
    """(line, message) for the first ``include`` line that is not a quoted name or a known form."""
    for number, line in enumerate(text.splitlines(), start=1):
        match = _INCLUDE.match(line)
        if (
            match
            and not line.lstrip().startswith(("#", "//"))
            and not _INCLUDE_FORMS.match(match.group("rest"))
        ):
            return number, (
                f'include needs a quoted file name: include "other.conf" or include required("other.conf"); '
                f"the line reads: {printable_line(line)!r}"
            )
    return None


def include_line(text: str, target: str) -> int | None:
    """The line of ``text`` whose include names ``target`` (a path, absolute or not)."""
    name = Path(target).name
    for number, line in enumerate(text.splitlines(), start=1):
        match = _INCLUDE.match(line)
        quoted = _INCLUDE_NAME.search(match.group("rest")) if match else None
        if quoted and Path(quoted.group("name")).name == name:
            return number
    return None


def included_file(text: str, basedir: Path, failing_text: str) -> Path | None:
    """Which file that ``text`` includes holds ``failing_text`` (an error raised inside an include)."""
    for line in text.splitlines():
        match = _INCLUDE.match(line)
        quoted = _INCLUDE_NAME.search(match.group("rest")) if match else None
        if quoted is None:
            continue
        candidate = (basedir / quoted.group("name")).expanduser()
        try:
            if candidate.read_text(encoding="utf-8") == failing_text:
                return candidate
        except (OSError, UnicodeDecodeError):
            continue
    return None
