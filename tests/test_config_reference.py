"""ClearML's configuration reference as our defaults: real clearml.conf files load, validate clean
and read back as written; every documented environment variable lands on a key that exists."""

from __future__ import annotations

import copy
import functools
import os
from pathlib import Path
from typing import Any

import pytest
from pyhocon import ConfigFactory

from clearml_core.config.fixed_env import FIXED_VARIABLES
from clearml_core.config.loader import load_not_used_keys, merge_layer
from clearml_core.errors import ConfigError
from clearml_core.settings import check_file, load_config, validate_file

DEFAULTS = Path(__file__).parents[1] / "core" / "clearml_core" / "config" / "defaults"
FIXTURES = Path(__file__).parent / "fixtures" / "clearml_conf"
REFERENCE_FILES = ["reference_sdk.conf", "reference_agent.conf"]
ALL_FIXTURES = [*REFERENCE_FILES, "typical_user.conf"]
SECTION_FILES = {"sdk.conf": "sdk", "api.conf": "api", "agent.conf": "agent"}

_ABSENT = object()


def _at(tree: Any, key: str) -> Any:
    """The value at a dotted key; numeric parts index lists (``sdk.aws.s3.credentials.0.key``)."""
    node = tree
    for part in key.split("."):
        if isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            return _ABSENT
    return node


@functools.cache
def _loaded(name: str) -> dict[str, Any]:
    """A fixture loaded once per test run (parsing HOCON is slow); only HOME-free values are read."""
    return load_config(FIXTURES / name, environ={}).as_dict()


@pytest.fixture
def empty_conf(tmp_path: Path) -> Path:
    path = tmp_path / "none.conf"
    path.write_text("", encoding="utf-8")
    return path


@functools.cache
def _defaults(empty_file: str) -> dict[str, Any]:
    return load_config(empty_file, environ={}).as_dict()


@pytest.fixture
def defaults(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The merged built-in defaults, as the loader sees them with an empty user file."""
    path = tmp_path_factory.getbasetemp() / "none.conf"
    path.write_text("", encoding="utf-8")
    return _defaults(str(path))


@pytest.mark.parametrize("name, section", sorted(SECTION_FILES.items()))
def test_defaults_file_parses_and_starts_with_its_section(name: str, section: str) -> None:
    tree = ConfigFactory.parse_file(str(DEFAULTS / name))
    assert next(iter(tree.keys())) == section
    assert tree.get(section), f"{name} has an empty {section} section"


@pytest.mark.parametrize("name", ALL_FIXTURES)
def test_fixture_loads(name: str) -> None:
    config = load_config(FIXTURES / name, environ={})
    assert config.files == [FIXTURES / name]
    assert config.get("api.api_server")


@pytest.mark.parametrize("name", ALL_FIXTURES)
def test_fixture_has_no_unknown_keys(name: str) -> None:
    warnings = validate_file(FIXTURES / name)
    assert [w for w in warnings if "unknown key" in w] == []


SPOT_CHECKS = [
    # ClearML SDK sample
    ("reference_sdk.conf", "api.api_server", "https://api.clearml.example.com"),
    ("reference_sdk.conf", "api.files_server", "https://files.clearml.example.com"),
    ("reference_sdk.conf", "api.credentials.access_key", "FAKEACCESSKEY0000000000000000"),
    ("reference_sdk.conf", "api.http.retries.backoff_max", 60.0),
    ("reference_sdk.conf", "api.auth.token_expiration_threshold_sec", 600),
    ("reference_sdk.conf", "sdk.development.default_output_uri", "s3://b/x"),
    (
        "reference_sdk.conf",
        "sdk.storage.path_substitution.1.local_prefix",
        "file:///home/alice/shared/folder",
    ),
    ("reference_sdk.conf", "sdk.storage.cache.size.min_free_bytes", 21474836480),
    ("reference_sdk.conf", "sdk.storage.direct_access.1.url", "nfs://*"),
    ("reference_sdk.conf", "sdk.aws.s3.credentials.1.host", "minio.internal:9000"),
    ("reference_sdk.conf", "sdk.aws.s3.credentials.1.multipart", False),
    ("reference_sdk.conf", "sdk.aws.boto3.multipart_chunksize", 16777216),
    ("reference_sdk.conf", "sdk.aws.boto3.signature_version", "s3v4"),
    ("reference_sdk.conf", "sdk.google.storage.credentials.0.subdir", "path/in/bucket"),
    ("reference_sdk.conf", "sdk.azure.storage.containers.0.container_name", "artifacts"),
    ("reference_sdk.conf", "sdk.development.task_reuse_time_window_in_hours", 24.0),
    ("reference_sdk.conf", "sdk.dataset.preview.tabular.row_count", 20),
    ("reference_sdk.conf", "sdk.metrics.images.format", "JPEG"),
    ("reference_sdk.conf", "environment.TOKENIZERS_PARALLELISM", "false"),
    # clearml-agent sample
    ("reference_agent.conf", "api.web_server", "https://app.clearml.example.com"),
    ("reference_agent.conf", "agent.worker_id", "gpu-box-01:gpu0"),
    ("reference_agent.conf", "agent.package_manager.type", "uv"),
    ("reference_agent.conf", "agent.package_manager.priority_packages", ["cython", "numpy", "setuptools"]),
    ("reference_agent.conf", "agent.git.extra_credentials.0.host", "gitlab.example.com"),
    ("reference_agent.conf", "agent.force_git_ssh_port", 2222),
    ("reference_agent.conf", "agent.venvs_cache.free_space_threshold_gb", 5.0),
    ("reference_agent.conf", "agent.default_docker.match_rules.0.image", "python:3.11-bullseye"),
    ("reference_agent.conf", "agent.uptime", ["17-20 SUN,TUE"]),
    ("reference_agent.conf", "agent.task_ping_interval_sec", 60.0),
    ("reference_agent.conf", "agent.cuda_version", 12.4),
    ("reference_agent.conf", "agent.watchdog.requeue", True),
    ("reference_agent.conf", "sdk.aws.s3.use_credentials_chain", True),
    ("reference_agent.conf", "sdk.aws.s3.credentials.0.verify", "/etc/ssl/certs/internal-ca.crt"),
    ("reference_agent.conf", "files.netrc.mode", "0o600"),
    # a short real-world file; what it does not set keeps the default
    ("typical_user.conf", "api.credentials.secret_key", "typical-fake-secret-key-0000000000000000"),
    ("typical_user.conf", "sdk.aws.s3.credentials.0.bucket", "my-team-models"),
    ("typical_user.conf", "sdk.development.default_output_uri", "s3://my-team-models/experiments"),
    ("typical_user.conf", "agent.git_user", "alice"),
    ("typical_user.conf", "agent.package_manager.type", "pip"),
    ("typical_user.conf", "sdk.storage.cache.default_base_dir", "~/.clearml-core/cache"),
]


@pytest.mark.parametrize("name, key, expected", SPOT_CHECKS)
def test_fixture_value(name: str, key: str, expected: Any) -> None:
    value = _at(_loaded(name), key)
    assert value == expected
    assert type(value) is type(expected)


def test_optional_substitutions_resolve_from_the_environment() -> None:
    home = os.environ["HOME"]
    agent = load_config(FIXTURES / "reference_agent.conf", environ={})
    assert agent.get("agent.venvs_dir") == f"{home}/.clearml/venvs-builds"
    assert agent.get("agent.control_plane") == f"sqlite:///{home}/.clearml-core/state.db"
    sdk = load_config(FIXTURES / "reference_sdk.conf", environ={})
    assert sdk.get("sdk.storage.cache.default_base_dir") == f"{home}/.cache/clearml"


def test_origin_names_the_fixture_file() -> None:
    path = FIXTURES / "reference_sdk.conf"
    config = load_config(path, environ={})
    assert config.origin("api.files_server").startswith(str(path))
    assert config.origin("agent.package_manager.type") == "default"


def test_our_settings_have_their_defaults(defaults: dict[str, Any]) -> None:
    assert _at(defaults, "agent.control_plane") == "sqlite:///~/.clearml-core/state.db"
    assert _at(defaults, "agent.watchdog") == {
        "threshold_sec": 7200,
        "watch_interval_sec": 900,
        "requeue": False,
    }
    assert _at(defaults, "sdk.storage.cache.size") == {
        "max_used_bytes": -1,
        "min_free_bytes": 10 * 1024**3,
        "cleanup_margin_percent": 5,
    }
    assert _at(defaults, "sdk.storage.cache.default_cache_manager_size") == 100
    assert _at(defaults, "sdk.storage.transfer") == {
        "max_workers": 16,
        "retries": 3,
        "backoff_sec": 0.5,
        "timeout_sec": 600,
    }
    assert _at(defaults, "sdk.storage.direct_access") == [{"url": "file://*"}]
    assert _at(defaults, "sdk.storage.path_substitution") == []
    assert _at(defaults, "sdk.azure.storage.timeout") == 600


@pytest.fixture
def schema(defaults: dict[str, Any]) -> dict[str, Any]:
    """Every key clearml-core knows: the defaults, and the ClearML keys it does not use."""
    merged = copy.deepcopy(load_not_used_keys())
    merge_layer(merged, defaults)
    return merged


@pytest.mark.parametrize("name, key", sorted(FIXED_VARIABLES.items()))
def test_fixed_variable_names_a_known_key(name: str, key: str, schema: dict[str, Any]) -> None:
    assert name != "CLEARML_CONFIG_FILE"
    assert _at(schema, key) is not _ABSENT, (
        f"{name} sets {key}, which neither the defaults nor clearml_keys.conf have"
    )


def _text_for(default: Any) -> str:
    """An environment value the key's default type accepts."""
    if isinstance(default, bool):
        return "true"
    if isinstance(default, (int, float)):
        return "7"
    return "from-env"


def test_every_fixed_variable_overrides_its_key(schema: dict[str, Any], empty_conf: Path) -> None:
    # one load per round, each key set by one variable per round (CUDA_VERSION / CLEARML_CUDA_VERSION)
    rounds: list[dict[str, str]] = []
    for name, key in FIXED_VARIABLES.items():
        free = next((r for r in rounds if key not in r.values()), None)
        if free is None:
            free = {}
            rounds.append(free)
        free[name] = key
    for names in rounds:
        environ = {name: _text_for(_at(schema, key)) for name, key in names.items()}
        config = load_config(empty_conf, environ=environ)
        for name, key in names.items():
            assert config.origin(key) == f"env {name}"


def test_clearml_spelling_wins_over_the_generic_variable(empty_conf: Path) -> None:
    environ = {"CUDA_VERSION": "11.8", "CLEARML_CUDA_VERSION": "12.4"}
    config = load_config(empty_conf, environ=environ)
    assert config.get("agent.cuda_version") == "12.4"


def test_a_misspelt_key_is_warned_with_a_suggestion(tmp_path: Path) -> None:
    path = tmp_path / "clearml.conf"
    path.write_text("agent { package_manger { type: uv } }\nsdk.aws.boto3.pool_conections: 8\n")
    warnings = validate_file(path)
    assert any("agent.package_manger" in w and "agent.package_manager" in w for w in warnings)
    assert any("sdk.aws.boto3.pool_conections" in w and "pool_connections" in w for w in warnings)


def test_a_value_of_the_wrong_type_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "clearml.conf"
    path.write_text('sdk.aws.boto3.max_multipart_concurrency: "lots"\n')
    with pytest.raises(ConfigError, match="max_multipart_concurrency"):
        load_config(path, environ={})


def test_keys_clearml_core_does_not_use_get_one_note_per_section(tmp_path: Path) -> None:
    path = tmp_path / "clearml.conf"
    path.write_text(
        'api { web_server: "https://app.example", http.retries.total: 10 }\n'
        "api.default_version: 1.5\n"
        "sdk.metrics.images.quality: 70\n"
        "sdk.aws.s3.region: eu-west-1\n"
        "agent { bootstrap.use_bootstrap: false, package_manager.uv_run_extra_args: [] }\n"
        "api.http.retries.totl: 3\n"
    )
    result = check_file(path)
    assert result.warnings == [
        f"{path}:6: unknown key api.http.retries.totl; did you mean api.http.retries.total?"
    ]
    assert [note.split(": ", 2)[1] for note in result.notes] == ["api", "sdk", "agent"]
    api_note = result.notes[0]
    assert "api.web_server, api.http, api.default_version" in api_note
    assert 'docs/configuration.md, "ClearML settings clearml-core does not use"' in api_note
    assert "agent.bootstrap, agent.package_manager.uv_run_extra_args" in result.notes[2]


def test_keys_clearml_core_does_not_use_are_typed_but_not_merged(tmp_path: Path, empty_conf: Path) -> None:
    config = load_config(empty_conf, environ={})
    assert "api.web_server" not in config and "sdk.metrics" not in config
    path = tmp_path / "clearml.conf"
    path.write_text("api.http.retries.backoff_max: 60\n")
    assert load_config(path, environ={}).get("api.http.retries.backoff_max") == 60.0
    path.write_text('sdk.metrics.images.quality: "high"\n')
    with pytest.raises(ConfigError, match="sdk.metrics.images.quality must be an integer"):
        load_config(path, environ={})
