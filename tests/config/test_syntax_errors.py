"""A broken clearml.conf is one short line: file, line, what is wrong and the line's text (secrets
masked) — never pyparsing's grammar dump."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from clearml_core.config import parse_hocon_file
from clearml_core.errors import ConfigError

BROKEN = [
    # (name, text, line, words the message must hold, line text shown or None)
    ("unclosed brace", 'sdk {\n  aws {\n    s3 { region: "x" }\n', 4, ["'{' is never closed"], None),
    ("unclosed list", "sdk {\n  a: [1, 2\n  b: 3\n}\n", 4, ["'[' is not closed"], "}"),
    ("stray equals", "sdk {\n  a = = 1\n}\n", 2, ["unexpected '='"], "a = = 1"),
    ("extra brace", "sdk {\n  a: 1\n}}\n", 3, ["unexpected '}'"], "}}"),
    (
        "unterminated string",
        'agent {\n  git_user: "abc\n  worker_id: x\n}\n',
        2,
        ["unexpected '\"'"],
        'git_user: "abc',
    ),
    (
        "include without quotes",
        "include other.conf\nsdk { a: 1 }\n",
        1,
        ["quoted file name"],
        "include other.conf",
    ),
    (
        "include of a missing required file",
        'sdk { a: 1 }\ninclude required("missing.conf")\n',
        2,
        ["missing.conf does not exist"],
        None,
    ),
]


def write(tmp_path: Path, text: str, name: str = "clearml.conf") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize(("name", "text", "line", "words", "shown"), BROKEN, ids=[b[0] for b in BROKEN])
def test_one_short_line(tmp_path, name, text, line, words, shown) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as raised:
        parse_hocon_file(path)
    message = str(raised.value)
    assert message.startswith(f"{path}:{line}: "), message
    assert "\n" not in message and len(message) < 250, message
    assert "Expected" not in message and "Suppress" not in message
    for word in words:
        assert word in message
    if shown is not None:
        assert message.endswith(f"the line reads: {shown!r}")


@pytest.mark.parametrize(
    "text",
    ['agent {\n  git_pass: "hunter2-pass\n}\n', "agent {\n  git_pass = hunt@er2-pass\n}\n"],
    ids=["unterminated", "stray character"],
)
def test_a_broken_secret_line_is_masked(tmp_path, text) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_hocon_file(write(tmp_path, text))
    message = str(raised.value)
    assert ":2: " in message and "git_pass" in message and "****" in message
    assert "hunt" not in message and "@" not in message


def test_an_error_inside_an_included_file_names_that_file(tmp_path) -> None:
    included = write(tmp_path, "a {\n  b: = \n", name="part.conf")
    path = write(tmp_path, 'x: 1\ninclude "part.conf"\n')
    with pytest.raises(ConfigError) as raised:
        parse_hocon_file(path)
    assert str(raised.value).startswith(f"{included}:2: HOCON syntax error: unexpected '='")


def test_a_missing_optional_include_is_one_warning_of_ours(tmp_path, caplog) -> None:
    path = write(tmp_path, 'x: 1\ninclude "nope.conf"\n')
    with caplog.at_level(logging.WARNING, logger="clearml_core.config"):
        assert parse_hocon_file(path) == {"x": 1}
    assert [r.getMessage() for r in caplog.records if r.name == "clearml_core.config"] == [
        f"{path}:2: the included file {tmp_path / 'nope.conf'} does not exist; skipped "
        '(write include required("…") to make that an error)'
    ]
