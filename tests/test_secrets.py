"""Secrets never reach CLI output: a property test over random secrets in files and env."""

from __future__ import annotations

import json
import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clearml_core.cli.main import execute
from clearml_core.plugins import reset_registry
from clearml_core.settings import reset_config

# Real secrets mix cases and digits; the filter keeps a random secret from being a plain word that
# the output holds anyway ("container_na" is in "container_name").
SECRET = st.text(alphabet=string.ascii_letters + string.digits + "+/_-", min_size=12, max_size=40).filter(
    lambda s: sum(c.isdigit() for c in s) >= 2 and any(c.isupper() for c in s) and any(c.islower() for c in s)
)

CONF = """
sdk {{
    aws.s3 {{
        key: "{0}"
        secret: "{1}"
        credentials: [ {{ bucket: "data", host: "minio:9000", key: "{2}", secret: "{3}" }} ]
    }}
    azure.storage.containers: [
        {{ account_name: "acct", account_key: "{4}", container_name: "c", sas_token: "{5}" }}
    ]
    google.storage.credentials_json: "{{\\"type\\": \\"service_account\\", \\"private_key\\": \\"{6}\\"}}"
    development.default_output_uri: "ftp://user:{7}@files.example/out"
}}
api.credentials {{ access_key: "{8}", secret_key: "{9}" }}
agent {{ git_user: "bot", git_pass: "{10}" }}
"""

COMMANDS = [
    ["config", "show"],
    ["config", "show", "--json"],
    ["config", "show", "--origin"],
    ["config", "show", "--json", "--origin"],
    ["config", "show", "sdk.aws.s3"],
    ["config", "show", "agent.git_pass"],
    ["config", "validate"],
    ["doctor", "--json"],
    ["plugins", "list"],
]


def run(argv, capsys):
    reset_config()
    reset_registry()
    code = execute(argv)
    captured = capsys.readouterr()
    return code, captured.out + captured.err


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(secrets=st.lists(SECRET, min_size=16, max_size=16, unique=True))
def test_no_secret_reaches_any_output(secrets, clearml_conf, monkeypatch, capsys):
    clearml_conf.write_text(CONF.format(*secrets))
    environment = {
        "AWS_ACCESS_KEY_ID": secrets[11],
        "AWS_SECRET_ACCESS_KEY": secrets[12],
        "CLEARML__SDK__AWS__S3__TOKEN": secrets[13],
        "CLEARML_AGENT_GIT_PASS": secrets[14],
        "AZURE_STORAGE_CONNECTION_STRING": f"DefaultEndpointsProtocol=https;AccountName=a;AccountKey={secrets[15]}",
    }
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    for argv in COMMANDS:
        code, output = run(argv, capsys)
        assert code in (0, 1), (argv, output)
        leaked = [s for s in secrets if s in output]
        assert not leaked, (argv, leaked)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(secret=SECRET)
def test_no_secret_in_error_messages(secret, clearml_conf, capsys):
    broken_files = [
        f'agent {{\n  git_pass: "{secret}\n}}\n',  # syntax error on the secret's own line
        f'sdk.aws.s3 {{ secret: ["{secret}"] }}\n',  # wrong type for a secret key
        f'sdk.aws.s3.secret: "{secret}"\nsdk.aws.boto3.max_multipart_concurrency: "lots"\n',
        f'sdk.aws.s3.secret: "{secret}"\nagent.worker_id: ${{CLEARML_TEST_UNSET}}\n',
    ]
    for text in broken_files:
        clearml_conf.write_text(text)
        for argv in (["config", "show"], ["config", "validate"]):
            code, output = run(argv, capsys)
            assert code == 2, (text, output)
            assert secret not in output, (text, output)


def test_access_key_ids_show_their_last_four(clearml_conf, capsys):
    clearml_conf.write_text('sdk.aws.s3.key: "AKIAABCDEFGHIJKL1234"\n')
    code, output = run(["config", "show", "sdk.aws.s3", "--json"], capsys)
    assert code == 0
    assert json.loads(output)["key"] == "****1234"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("see https://bob:hunter2hunter2@example.com/x", "see https://bob:****@example.com/x"),
        ("s3://k:s@h/b", "s3://k:****@h/b"),
    ],
)
def test_url_passwords_are_masked_in_any_text(text, expected):
    from clearml_core.config.redact import redactor

    assert redactor(text) == expected
