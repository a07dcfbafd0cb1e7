"""Which line of a HOCON file set each key, for ``config show --origin`` and error messages.

pyhocon keeps no positions for keys or values: its parse results are a ``ConfigTree`` of plain
``str`` keys and ``int`` / ``str`` / list values, and the parse actions that see a location
(``ConfigTreeParser.postParse``) get only that of the enclosing object, not of each key; only
unresolved ``${…}`` substitutions (and concatenations) carry ``loc``, for pyhocon's own errors.
Its grammar is built inside ``ConfigParser.parse`` with no hook to add one. So this scanner walks
the text once, tracking the path of nested objects. It is best effort by design: a key it cannot
place is reported with its file only.
"""

from __future__ import annotations

import re

_KEY = re.compile(r'\s*("(?:[^"\\]|\\.)*"|[^\s:={}\[\],#"]+(?:\s*\.\s*[^\s:={}\[\],#"]+)*)\s*(\+?=|:|\{)?')


def _split_key(raw: str) -> list[str]:
    if raw.startswith('"'):
        return [raw[1:-1]]
    return [part.strip().strip('"') for part in raw.split(".")]


def key_lines(text: str) -> dict[str, int]:
    """Map each dotted key path written in ``text`` to the (1-based) line that sets it."""
    lines: dict[str, int] = {}
    stack: list[list[str]] = [[]]  # path prefixes of the open objects; arrays push None-like []
    in_array: list[bool] = [False]
    pos, line, size = 0, 1, len(text)
    expect_key = True
    while pos < size:
        char = text[pos]
        if char == "\n":
            line += 1
            pos += 1
            expect_key = not in_array[-1]
            continue
        if char in " \t\r,":
            if char == ",":
                expect_key = not in_array[-1]
            pos += 1
            continue
        if char == "#" or text.startswith("//", pos):
            end = text.find("\n", pos)
            pos = size if end < 0 else end
            continue
        if text.startswith('"""', pos):
            end = text.find('"""', pos + 3)
            end = size if end < 0 else end + 3
            line += text.count("\n", pos, end)
            pos = end
            continue
        if text.startswith("${", pos):
            end = text.find("}", pos)
            pos = size if end < 0 else end + 1
            continue
        if char == "}" or char == "]":
            if len(stack) > 1:
                stack.pop()
                in_array.pop()
            pos += 1
            expect_key = False
            continue
        if char == "{" or char == "[":
            # an object inside an array, or an array value: keys inside are not addressable by path
            stack.append(stack[-1] if char == "{" and not in_array[-1] else [*stack[-1], "[]"])
            in_array.append(char == "[")
            pos += 1
            expect_key = char == "{"
            continue
        if expect_key and not in_array[-1]:
            match = _KEY.match(text, pos)
            if match and match.group(1):
                path = [*stack[-1], *_split_key(match.group(1))]
                if "[]" not in path:
                    lines[".".join(path)] = line
                pos = match.end()
                if match.group(2) != "{":
                    while pos < size and text[pos] in " \t":
                        pos += 1
                if match.group(2) == "{" or (pos < size and text[pos] == "{"):
                    pos += 0 if match.group(2) == "{" else 1
                    stack.append(path)
                    in_array.append(False)
                    expect_key = True
                else:
                    expect_key = False
                continue
        if char == '"':
            end = pos + 1
            while end < size and text[end] != '"':
                end += 2 if text[end] == "\\" else 1
            pos = end + 1
            continue
        pos += 1
    return lines


def line_of(lines: dict[str, int], key: str) -> int | None:
    """The line of ``key`` or of its nearest written ancestor (a list entry, a dotted prefix)."""
    parts = key.split(".")
    while parts:
        found = lines.get(".".join(parts))
        if found is not None:
            return found
        parts.pop()
    return None
