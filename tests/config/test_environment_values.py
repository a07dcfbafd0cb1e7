"""``CLEARML__…`` / ``CLEARML_AGENT__…`` values are read as clearml-agent reads them: as the HOCON
text after ``key:`` (its ``ConfigFactory.parse_string("{path}: {value}")``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from clearml_core.errors import ConfigError
from clearml_core.settings import load_config

DEFAULTS = """
sdk {
    aws.s3 { region: "", secret: "", extra_args: {} }
    development { default_output_uri: "", log_os_environments: [] }
    storage.transfer { max_workers: 16, backoff_sec: 0.5 }
}
agent {
    git_pass: ""
    worker_name: ""
    cuda_version: null
    git_fetch_args: ["--all"]
    package_manager { extra_index_url: [], system_site_packages: false }
}
"""


@pytest.fixture
def load(tmp_path: Path):
    defaults = tmp_path / "defaults.conf"
    defaults.write_text(DEFAULTS)
    empty = tmp_path / "clearml.conf"
    empty.write_text("")

    def load_with(**environ: str) -> Any:
        return load_config(empty, environ=environ, defaults=[defaults])

    return load_with


@pytest.mark.parametrize(
    ("variable", "text", "key", "expected"),
    [
        # lists: unquoted items, quoted items, URLs
        (
            "CLEARML_AGENT__AGENT__GIT_FETCH_ARGS",
            "[--all, --tags]",
            "agent.git_fetch_args",
            ["--all", "--tags"],
        ),
        (
            "CLEARML_AGENT__AGENT__GIT_FETCH_ARGS",
            '["--all", "--tags"]',
            "agent.git_fetch_args",
            ["--all", "--tags"],
        ),
        (
            "CLEARML_AGENT__AGENT__PACKAGE_MANAGER__EXTRA_INDEX_URL",
            "[https://a.example/simple, 'https://b.example/simple']",
            "agent.package_manager.extra_index_url",
            ["https://a.example/simple", "'https://b.example/simple'"],
        ),
        ("CLEARML__SDK__DEVELOPMENT__LOG_OS_ENVIRONMENTS", "[]", "sdk.development.log_os_environments", []),
        # objects merge into the section, as in the file
        (
            "CLEARML__SDK__AWS__S3__EXTRA_ARGS",
            "{ACL: public-read}",
            "sdk.aws.s3.extra_args",
            {"ACL": "public-read"},
        ),
        # numbers and booleans
        ("CLEARML__SDK__STORAGE__TRANSFER__MAX_WORKERS", "4", "sdk.storage.transfer.max_workers", 4),
        ("CLEARML__SDK__STORAGE__TRANSFER__BACKOFF_SEC", "1.5", "sdk.storage.transfer.backoff_sec", 1.5),
        (
            "CLEARML_AGENT__AGENT__PACKAGE_MANAGER__SYSTEM_SITE_PACKAGES",
            "true",
            "agent.package_manager.system_site_packages",
            True,
        ),
        ("CLEARML_AGENT__AGENT__CUDA_VERSION", "12.4", "agent.cuda_version", 12.4),
        # unquoted and quoted strings
        ("CLEARML__SDK__AWS__S3__REGION", "eu-west-1", "sdk.aws.s3.region", "eu-west-1"),
        ("CLEARML__SDK__AWS__S3__REGION", '"eu-west-1"', "sdk.aws.s3.region", "eu-west-1"),
        (
            "CLEARML__SDK__DEVELOPMENT__DEFAULT_OUTPUT_URI",
            "s3://b/x",
            "sdk.development.default_output_uri",
            "s3://b/x",
        ),
    ],
)
def test_hocon_values(load, variable: str, text: str, key: str, expected: Any) -> None:
    value = load(**{variable: text}).get(key)
    assert value == expected
    assert type(value) is type(expected)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # what HOCON would cut (a comment) or re-join (words) stays as written: an environment
        # value is one line of text, never a comment
        ("p#ss//w0rd", "p#ss//w0rd"),
        ("true false", "true false"),
        # not HOCON at all (`=` and `@` outside quotes): the text itself
        ("p@ss=w0rd!", "p@ss=w0rd!"),
        # a number or a boolean for a text key keeps its text (a password's leading zero is not lost)
        ("00123", "00123"),
        ("true", "true"),
    ],
)
def test_text_keys_keep_what_was_written(load, text: str, expected: str) -> None:
    # (not a secret key: the process-wide redactor would mask "true" in later tests' output)
    assert load(CLEARML_AGENT__AGENT__WORKER_NAME=text).get("agent.worker_name") == expected


def test_a_newline_cannot_set_another_key(load) -> None:
    config = load(CLEARML__SDK__AWS__S3__REGION="eu\nagent.git_pass: injected")
    assert config.get("sdk.aws.s3.region") == "eu\nagent.git_pass: injected"
    assert config.get("agent.git_pass") == ""


@pytest.mark.parametrize("text", ["[a, b", "{a: 1", '"unterminated', "[1, 2]]", "{a b c}"])
def test_what_cannot_parse_is_one_line_naming_the_variable(load, text: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load(CLEARML__SDK__DEVELOPMENT__LOG_OS_ENVIRONMENTS=text)
    message = str(raised.value)
    assert "\n" not in message
    assert "CLEARML__SDK__DEVELOPMENT__LOG_OS_ENVIRONMENTS" in message
    assert repr(text) in message
    assert "Expected {" not in message and len(message) < 300


def test_a_secret_that_cannot_parse_is_masked(load) -> None:
    with pytest.raises(ConfigError) as raised:
        load(CLEARML__SDK__AWS__S3__SECRET="[hunter2-secret")
    assert "CLEARML__SDK__AWS__S3__SECRET" in str(raised.value)
    assert "hunter2" not in str(raised.value)
