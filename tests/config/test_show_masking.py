"""``config show`` masks secrets only, and honours ``agent.sanitize_config_printout`` as
clearml-agent's ``print_configuration`` does: ``hide_secrets`` and ``hide_secrets_recursive``
(regexps searched in key names) hide, ``dont_hide_secrets`` exempts a key from them."""

from __future__ import annotations

import json
from typing import Any

from clearml_core.cli.main import execute
from clearml_core.plugins import reset_registry
from clearml_core.settings import reset_config


def show(capsys, *argv: str) -> Any:
    reset_config()
    reset_registry()
    code = execute(["config", "show", *argv, "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return json.loads(captured.out)


def test_booleans_and_numbers_are_never_masked(clearml_conf, capsys) -> None:
    clearml_conf.write_text(
        "agent { enable_git_ask_pass: false, git_use_ms_entra_token: true, git_pass: 12345678 }\n"
        "api.auth.token_expiration_threshold_sec: 600\n"
    )
    agent = show(capsys, "agent")
    assert agent["enable_git_ask_pass"] is False
    assert agent["git_use_ms_entra_token"] is True
    assert agent["git_pass"] == "****"  # its default is text: the digits are a password
    assert show(capsys, "api.auth.token_expiration_threshold_sec") == 600


def test_a_number_named_as_a_secret_in_free_form_entries_is_masked(clearml_conf, capsys) -> None:
    clearml_conf.write_text('sdk.aws.s3.credentials: [{ bucket: "b", secret: 87654321, multipart: false }]\n')
    entry = show(capsys, "sdk.aws.s3.credentials")[0]
    assert entry == {"bucket": "b", "secret": "****", "multipart": False}


def test_default_rules_hide_file_contents_and_the_environment_section(clearml_conf, capsys) -> None:
    clearml_conf.write_text(
        'files.netrc { path: "~/.netrc", contents: "machine h login u password p", mode: 384 }\n'
        'environment { HF_HUB_URL: "https://hub.example", SEED: 42 }\n'
    )
    assert show(capsys, "files.netrc") == {"path": "~/.netrc", "contents": "****", "mode": 384}
    assert show(capsys, "environment") == {"HF_HUB_URL": "****", "SEED": 42}
    assert show(capsys, "environment.HF_HUB_URL") == "****"


def test_hide_secrets_takes_the_users_patterns(clearml_conf, capsys) -> None:
    clearml_conf.write_text(
        "agent.sanitize_config_printout.hide_secrets: [webhook]\n"
        'agent.worker_name: "box"\n'
        'sdk.development.default_output_uri: "s3://b/out"\n'
        'agent.slack_webhook: "https://hooks.example/T000/B000"\n'
    )
    agent = show(capsys, "agent")
    assert agent["slack_webhook"] == "****"
    assert agent["worker_name"] == "box"
    # the built-in names stay masked whatever the patterns say
    assert show(capsys, "agent.git_pass") == ""


def test_dont_hide_secrets_shows_a_key_the_patterns_would_hide(clearml_conf, capsys) -> None:
    clearml_conf.write_text('sdk.storage.cache.passthrough_note: "text"\n')
    assert show(capsys, "sdk.storage.cache.passthrough_note") == "****"  # the default "pass" pattern
    clearml_conf.write_text(
        'sdk.storage.cache.passthrough_note: "text"\n'
        'agent.sanitize_config_printout.dont_hide_secrets: ["^passthrough_note$"]\n'
    )
    assert show(capsys, "sdk.storage.cache.passthrough_note") == "text"


def test_hide_secrets_recursive_hides_a_whole_object(clearml_conf, capsys) -> None:
    clearml_conf.write_text(
        'agent.sanitize_config_printout.hide_secrets_recursive: ["^extra_args$"]\n'
        'sdk.aws.s3.extra_args { ServerSideEncryption: "aws:kms", SSEKMSKeyId: "kms-id" }\n'
    )
    assert show(capsys, "sdk.aws.s3.extra_args") == {"ServerSideEncryption": "****", "SSEKMSKeyId": "****"}


def test_a_bad_pattern_is_a_config_error(clearml_conf, capsys) -> None:
    clearml_conf.write_text('agent.sanitize_config_printout.hide_secrets: ["(unclosed"]\n')
    reset_config()
    reset_registry()
    code = execute(["config", "show"])
    err = capsys.readouterr().err
    assert code == 2
    assert "agent.sanitize_config_printout.hide_secrets" in err and "(unclosed" in err


def test_docker_argument_lists_are_hidden_whole(clearml_conf, capsys) -> None:
    clearml_conf.write_text('agent.extra_docker_arguments: ["--ipc=host", "-e", "MY_VALUE=plain-s3cr3t"]\n')
    assert show(capsys, "agent.extra_docker_arguments") == ["****"] * 3
    clearml_conf.write_text(
        'agent.extra_docker_arguments: ["--ipc=host"]\nagent.sanitize_config_printout.docker_commands: []\n'
    )
    assert show(capsys, "agent.extra_docker_arguments") == ["--ipc=host"]
