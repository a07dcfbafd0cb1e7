"""``config show|validate|init`` and the CLI's error contract, through the real console entry."""

from __future__ import annotations

import json
import os
import stat

from tests.helpers import run_cli

S3_CONF = """
sdk {
    aws {
        s3 {
            region: "eu-west-1"
            credentials: [
                { bucket: "data", key: "AKIAEXAMPLEKEY01", secret: "very-secret-value-1" }
            ]
        }
    }
}
agent.git_pass: "git-token-value-2"
"""


def test_version_and_help():
    result = run_cli("--version")
    assert result.code == 0 and result.out.startswith("clearml-core ")
    result = run_cli("--help")
    assert result.code == 0 and "plugins" in result.out and "config" in result.out and "doctor" in result.out


def test_show_masks_secrets_and_tells_origins(clearml_conf):
    clearml_conf.write_text(S3_CONF)
    result = run_cli("config", "show", "--origin", env={"CLEARML__AGENT__WORKER_NAME": "box"})
    assert result.code == 0, result.err
    assert "very-secret-value-1" not in result.text and "git-token-value-2" not in result.text
    assert f'sdk.aws.s3.region: "eu-west-1"    # {clearml_conf}:5' in result.out
    assert 'agent.worker_name: "box"    # env CLEARML__AGENT__WORKER_NAME' in result.out
    assert "****EY01" in result.out


def test_show_key_and_json(clearml_conf):
    clearml_conf.write_text(S3_CONF)
    result = run_cli("config", "show", "sdk.aws.s3", "--json")
    data = json.loads(result.out)
    assert data["region"] == "eu-west-1"
    assert data["credentials"][0] == {"bucket": "data", "key": "****EY01", "secret": "****"}
    result = run_cli("config", "show", "sdk.aws.s3.region", "--json", "--origin")
    assert json.loads(result.out) == {
        "sdk.aws.s3.region": {"value": "eu-west-1", "origin": f"{clearml_conf}:5"}
    }
    result = run_cli("config", "show", "sdk.aws.s3.regoin")
    assert (
        result.code == 2
        and result.err.startswith("error: no configuration key")
        and "Traceback" not in result.err
    )


def test_validate_warns_about_unknown_keys_with_a_suggestion(clearml_conf):
    clearml_conf.write_text(
        'sdk {\n  aws {\n    s3 { regoin: "x" }\n  }\n}\nagent.package_manager.tpye: uv\n'
    )
    result = run_cli("config", "validate")
    assert result.code == 0, result.err
    assert (
        f"warning: {clearml_conf}:3: unknown key sdk.aws.s3.regoin; did you mean sdk.aws.s3.region?"
        in result.err
    )
    assert "unknown key agent.package_manager.tpye; did you mean agent.package_manager.type?" in result.err
    assert "valid, 2 warning(s)" in result.out


def test_validate_another_file_and_errors(tmp_path):
    broken = tmp_path / "broken.conf"
    broken.write_text("sdk {\n  aws {\n")
    result = run_cli("config", "validate", str(broken))
    assert result.code == 2 and result.err.startswith(f"error: {broken}:") and "Traceback" not in result.err
    wrong = tmp_path / "wrong.conf"
    wrong.write_text('sdk.aws.boto3.max_multipart_concurrency: "lots"\n')
    result = run_cli("config", "validate", str(wrong))
    assert result.code == 2
    assert (
        result.err.strip()
        == f"error: {wrong}:1: sdk.aws.boto3.max_multipart_concurrency must be an integer, got 'lots'"
    )


def test_every_command_reports_a_broken_config_in_one_line(clearml_conf):
    clearml_conf.write_text("agent { worker_id: ${CLEARML_TEST_NOT_SET} }\n")
    for args in (["config", "show"], ["config", "validate"]):
        result = run_cli(*args)
        assert result.code == 2, (args, result.text)
        assert len(result.err.strip().splitlines()) == 1 and "CLEARML_TEST_NOT_SET" in result.err
    # doctor reports rather than stops: the broken configuration is one of its checks
    result = run_cli("doctor", "--json")
    checks = {check["name"]: check for check in json.loads(result.out)}
    assert result.code == 1 and checks["configuration"]["status"] == "error"
    assert "CLEARML_TEST_NOT_SET" in checks["configuration"]["detail"]
    result = run_cli("--debug", "config", "show")
    assert result.code == 2 and "Traceback" in result.err


def test_a_syntax_error_is_one_line_everywhere_and_doctor_says_it_once(clearml_conf, tmp_path):
    clearml_conf.write_text('sdk {\n  aws.s3.region: "eu"\n  a = = 1\n}\n')
    expected = f"error: {clearml_conf}:3: HOCON syntax error: unexpected '='; the line reads: 'a = = 1'"
    for args in (["config", "show"], ["storage", "ls", tmp_path.as_uri()], ["task", "list"]):
        result = run_cli(*args)
        assert result.code == 2, (args, result.text)
        assert result.err.strip() == expected, args
    result = run_cli("doctor")
    assert result.code == 1
    assert result.out.count("HOCON syntax error") == 1, result.out
    checks = json.loads(run_cli("doctor", "--json").out)
    assert [c["name"] for c in checks if c["status"] == "error"] == ["configuration"]


def test_a_missing_optional_include_is_our_warning_not_pyhocons(clearml_conf):
    clearml_conf.write_text('include "extra.conf"\nsdk.aws.s3.region: "eu"\n')
    result = run_cli("config", "show", "sdk.aws.s3.region")
    assert result.code == 0 and result.out == 'sdk.aws.s3.region: "eu"\n'
    missing = clearml_conf.parent / "extra.conf"
    assert result.err == (
        f"warning: {clearml_conf}:1: the included file {missing} does not exist; skipped "
        '(write include required("…") to make that an error)\n'
    )


def test_init_writes_a_private_file_and_never_overwrites(clearml_home):
    target = clearml_home / "new.conf"
    result = run_cli(
        "config",
        "init",
        "--file",
        str(target),
        "--non-interactive",
        "--git-user",
        "bot",
        "--git-pass-stdin",
        "--extra-index-url",
        "https://pypi.example/simple",
        "--output-uri",
        "s3://bucket/out",
        input="token-from-stdin-3\n",
    )
    assert result.code == 0, result.err
    assert "token-from-stdin-3" not in result.text
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o600
    shown = run_cli("config", "show", "--json", env={"CLEARML_CONFIG_FILE": str(target)})
    data = json.loads(shown.out)
    assert data["agent"]["git_user"] == "bot" and data["agent"]["git_pass"] == "****"
    assert data["agent"]["package_manager"]["extra_index_url"] == ["https://pypi.example/simple"]
    assert data["sdk"]["development"]["default_output_uri"] == "s3://bucket/out"
    assert "token-from-stdin-3" in target.read_text()
    before = target.read_text()
    again = run_cli("config", "init", "--file", str(target), "--non-interactive")
    assert again.code == 2 and "already exists" in again.err and target.read_text() == before


def test_doctor_json(clearml_conf):
    clearml_conf.write_text('sdk.development.default_output_uri: "s3://bucket/out"\n')
    # with the S3 plugin switched off, doctor must say how to get it
    result = run_cli("doctor", "--json", env={"CLEARML_CORE_DISABLE_PLUGINS": "storage_s3"})
    checks = {check["name"]: check for check in json.loads(result.out)}
    assert checks["configuration"]["status"] == "ok"
    assert checks["tool git"]["status"] == "ok"
    storage = checks["storage sdk.development.default_output_uri"]
    assert storage["status"] == "error" and "pip install 'clearml-core[s3]'" in storage["detail"]
    assert result.code == 1
