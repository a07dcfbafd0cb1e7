"""clearml.conf loading: layers, overrides, origins, typing and every kind of bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clearml_core.errors import ConfigError
from clearml_core.settings import load_config

DEFAULTS = """
sdk {
    aws {
        s3 { key: "", secret: "", region: "", credentials: [] }
        boto3 { max_multipart_concurrency: 16, multipart_threshold: 8388608 }
    }
    development { default_output_uri: "" }
    storage { cache { default_base_dir: "~/.clearml-core/cache" } }
}
agent {
    worker_id: ""
    cuda_version: null
    package_manager { type: pip, extra_index_url: [], system_site_packages: false }
    docker_container_name_format_fields: {}
}
"""


@pytest.fixture
def defaults(tmp_path: Path) -> list[Path]:
    path = tmp_path / "defaults.conf"
    path.write_text(DEFAULTS)
    return [path]


def write(tmp_path: Path, text: str, name: str = "clearml.conf") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_defaults_then_file_then_environment(tmp_path, defaults):
    conf = write(tmp_path, 'sdk.aws.s3.region: "eu-west-1"\nagent { package_manager { type: uv } }\n')
    config = load_config(conf, environ={"CLEARML__AGENT__PACKAGE_MANAGER__TYPE": "conda"}, defaults=defaults)
    assert config.get("sdk.aws.s3.region") == "eu-west-1"
    assert config.get("agent.package_manager.type") == "conda"
    assert config.get_int("sdk.aws.boto3.max_multipart_concurrency") == 16
    assert config.origin("sdk.aws.s3.region") == f"{conf}:1"
    assert config.origin("agent.package_manager.type") == "env CLEARML__AGENT__PACKAGE_MANAGER__TYPE"
    assert config.origin("sdk.aws.boto3.multipart_threshold") == "default"


def test_clearml_config_file_variable_and_home_default(tmp_path, defaults, clearml_home):
    conf = write(tmp_path, "agent.worker_id: from-variable\n")
    assert load_config(environ={"CLEARML_CONFIG_FILE": str(conf)}, defaults=defaults).get(
        "agent.worker_id"
    ) == ("from-variable")
    (clearml_home / "clearml.conf").write_text("agent.worker_id: from-home\n")
    assert load_config(environ={}, defaults=defaults).get("agent.worker_id") == "from-home"


def test_missing_default_file_is_fine_but_a_named_one_is_not(tmp_path, defaults):
    assert load_config(environ={}, defaults=defaults).files == []
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(environ={"CLEARML_CONFIG_FILE": str(tmp_path / "nope.conf")}, defaults=defaults)


def test_agent_prefix_and_case_insensitive_paths_and_json_values(tmp_path, defaults):
    environ = {
        "CLEARML_AGENT__AGENT__PACKAGE_MANAGER__EXTRA_INDEX_URL": '["https://a/simple", "https://b/simple"]',
        "CLEARML__sdk__AWS__boto3__MAX_MULTIPART_CONCURRENCY": "4",
        "CLEARML__AGENT__PACKAGE_MANAGER__SYSTEM_SITE_PACKAGES": "true",
    }
    config = load_config(write(tmp_path, ""), environ=environ, defaults=defaults)
    assert config.get("agent.package_manager.extra_index_url") == ["https://a/simple", "https://b/simple"]
    assert config.get("sdk.aws.boto3.max_multipart_concurrency") == 4
    assert config.get("agent.package_manager.system_site_packages") is True


def test_fixed_variables_keep_their_text(tmp_path, defaults):
    environ = {"CUDA_VERSION": "11.80", "CLEARML_WORKER_ID": "box:1", "CLEARML_CACHE_DIR": "/data/cache"}
    config = load_config(write(tmp_path, ""), environ=environ, defaults=defaults)
    assert config.get("agent.cuda_version") == "11.80"
    assert config.get("agent.worker_id") == "box:1"
    assert config.get("sdk.storage.cache.default_base_dir") == "/data/cache"
    assert config.origin("agent.worker_id") == "env CLEARML_WORKER_ID"


def test_substitutions_from_the_environment(tmp_path, defaults, monkeypatch):
    monkeypatch.setenv("MY_BUCKET", "models")
    conf = write(
        tmp_path,
        'sdk.development.default_output_uri: "s3://"${MY_BUCKET}"/out"\nagent.worker_id: ${?NOT_SET}\n',
    )
    config = load_config(conf, environ={}, defaults=defaults)
    assert config.get("sdk.development.default_output_uri") == "s3://models/out"
    assert config.get("agent.worker_id") == ""


def test_unset_variable_names_it_and_the_line(tmp_path, defaults):
    conf = write(tmp_path, "agent {\n  worker_id: ${CLEARML_TEST_UNSET_VARIABLE}\n}\n")
    with pytest.raises(ConfigError) as error:
        load_config(conf, environ={}, defaults=defaults)
    message = str(error.value)
    assert "CLEARML_TEST_UNSET_VARIABLE" in message and str(conf) in message
    assert "${?CLEARML_TEST_UNSET_VARIABLE}" in message


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("sdk {\n  aws {\n    s3 { key: \n}\n", None),
        ("agent {\n  worker_id: [1, 2\n}\n", None),
        ("a = }\n", 1),
    ],
)
def test_broken_hocon_names_file_and_line(tmp_path, defaults, text, line):
    conf = write(tmp_path, text)
    with pytest.raises(ConfigError) as error:
        load_config(conf, environ={}, defaults=defaults)
    message = str(error.value)
    assert message.startswith(f"{conf}:")
    assert "syntax error" in message
    if line:
        assert message.startswith(f"{conf}:{line}:")


def test_wrong_type_names_key_value_and_place(tmp_path, defaults):
    conf = write(tmp_path, 'sdk {\n  aws.boto3 {\n    max_multipart_concurrency: "lots"\n  }\n}\n')
    with pytest.raises(ConfigError) as error:
        load_config(conf, environ={}, defaults=defaults)
    assert str(error.value) == (
        f"{conf}:3: sdk.aws.boto3.max_multipart_concurrency must be an integer, got 'lots'"
    )


def test_wrong_type_from_the_environment(tmp_path, defaults):
    with pytest.raises(ConfigError, match="env CLEARML__AGENT__PACKAGE_MANAGER__SYSTEM_SITE_PACKAGES"):
        load_config(
            write(tmp_path, ""),
            environ={"CLEARML__AGENT__PACKAGE_MANAGER__SYSTEM_SITE_PACKAGES": "maybe"},
            defaults=defaults,
        )


def test_override_that_does_not_parse_is_an_error(tmp_path, defaults):
    with pytest.raises(
        ConfigError, match="CLEARML__AGENT__PACKAGE_MANAGER__EXTRA_INDEX_URL=.* does not parse"
    ):
        load_config(
            write(tmp_path, ""),
            environ={"CLEARML__AGENT__PACKAGE_MANAGER__EXTRA_INDEX_URL": '["https://a/simple",'},
            defaults=defaults,
        )


def test_unreadable_file(tmp_path, defaults):
    # a directory where the file should be is unreadable as a file for root too
    folder = tmp_path / "clearml.conf"
    folder.mkdir()
    with pytest.raises(ConfigError, match=f"cannot read configuration file {folder}"):
        load_config(folder, environ={}, defaults=defaults)


def test_not_utf8(tmp_path, defaults):
    conf = tmp_path / "clearml.conf"
    conf.write_bytes(b"agent.worker_id: \xff\xfe\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(conf, environ={}, defaults=defaults)


def test_free_form_sections_and_lists_are_kept(tmp_path, defaults):
    conf = write(
        tmp_path,
        """
        sdk.aws.s3.credentials: [
            { bucket: "data", key: "AKIAEXAMPLEKEY01", secret: "s3cr3t-value" }
            { host: "minio:9000", key: "minio", secret: "minio-secret", multipart: false, secure: false }
        ]
        agent.docker_container_name_format_fields: { foo: "bar" }
        """,
    )
    config = load_config(conf, environ={}, defaults=defaults)
    assert config.get("sdk.aws.s3.credentials")[1]["host"] == "minio:9000"
    assert config.get_dict("agent.docker_container_name_format_fields") == {"foo": "bar"}
    masked = config.as_dict(masked=True)["sdk"]["aws"]["s3"]["credentials"]
    assert masked[0]["secret"] == "****" and masked[0]["key"] == "****EY01"


def test_typed_accessors(tmp_path, defaults):
    config = load_config(write(tmp_path, 'agent.worker_id: "12"\n'), environ={}, defaults=defaults)
    assert config.get_int("agent.worker_id") == 12
    assert config.get_str("agent.missing", "x") == "x"
    assert config.get_list("agent.package_manager.extra_index_url") == []
    with pytest.raises(ConfigError, match="agent.package_manager.type must be an integer"):
        config.get_int("agent.package_manager.type")


@pytest.mark.parametrize(
    ("text", "expected"),
    [("10GB", 10 * 1000**3), ("512 MiB", 512 * 1024**2), ("5%", 5), ("1.5KiB", 1536), ("42", 42), ("7b", 7)],
)
def test_sizes_and_percentages(tmp_path, defaults, text, expected):
    conf = write(tmp_path, f'sdk.aws.boto3.multipart_threshold: "{text}"\n')
    assert (
        load_config(conf, environ={}, defaults=defaults).get("sdk.aws.boto3.multipart_threshold") == expected
    )


def test_list_valued_fixed_variables_are_split(tmp_path, clearml_home):
    environ = {
        "CLEARML_AGENT_EXTRA_DOCKER_ARGS": "--ipc=host -v '/data a:/data'",
        "CLEARML_LOG_ENVIRONMENT": "PATH, HOME",
    }
    config = load_config(write(tmp_path, ""), environ=environ)
    assert config.get("agent.extra_docker_arguments") == ["--ipc=host", "-v", "/data a:/data"]
    assert config.get("sdk.development.log_os_environments") == ["PATH", "HOME"]


def test_verify_certificate_may_be_a_ca_bundle(tmp_path, clearml_home):
    conf = write(tmp_path, 'api.verify_certificate: "/etc/ssl/corp.pem"\n')
    assert load_config(conf, environ={}).get("api.verify_certificate") == "/etc/ssl/corp.pem"
    conf = write(tmp_path, "api.verify_certificate: off\n")
    assert load_config(conf, environ={}).get("api.verify_certificate") is False


def test_a_plugin_defaults_file_that_is_missing_is_skipped_with_a_warning(tmp_path, caplog):
    from clearml_core.config.loader import load_defaults

    present = tmp_path / "present.conf"
    present.write_text("sdk.extra.value: 3\n", encoding="utf-8")
    values = load_defaults([tmp_path / "missing.conf", present])
    assert values["sdk"]["extra"]["value"] == 3
    assert any("missing.conf does not exist" in record.getMessage() for record in caplog.records)


def test_a_json_file_is_read_without_the_hocon_parser(tmp_path) -> None:
    """What the docker environment's containers read: JSON needs no pyhocon (a 65 ms import)."""
    import subprocess
    import sys

    path = tmp_path / "clearml.json"
    path.write_text(json.dumps({"agent": {"worker_name": "from-json", "polling_interval_sec": "2.5"}}))
    probe = (
        "import sys\nfrom clearml_core.settings import load_config\n"
        f"config = load_config({str(path)!r})\n"
        "print(config.get_str('agent.worker_name'), config.get('agent.polling_interval_sec'), 'pyhocon' in sys.modules)"
    )
    for _ in range(2):  # the first run may parse the defaults files and cache them (that needs pyhocon)
        out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["from-json", "2.5", "False"]
    path.write_text('{"agent": {"worker_name": }')
    with pytest.raises(ConfigError, match=r"clearml.json:1: not valid JSON"):
        load_config(path, environ={})
