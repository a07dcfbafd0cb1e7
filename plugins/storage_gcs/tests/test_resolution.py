"""Which credentials and settings a gs:// URL gets: emulator, clearml.conf, environment, ADC, anonymous."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from clearml_core_storage_gcs.driver import GCSDriver
from clearml_core_storage_gcs.settings import locate, read_credentials_json, settings_for
from hypothesis import given, settings
from hypothesis import strategies as st

from clearml_core.config import Config
from clearml_core.credentials import explain
from clearml_core.errors import ConfigError
from clearml_core.storage.url import parse_url
from plugins.storage_gcs.tests.support import entry, fake_service_account, google_conf, load


@pytest.fixture
def keys(tmp_path: Path) -> dict[str, Path]:
    made = {}
    for name in ("section", "team", "deep", "env"):
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(fake_service_account(f"{name}@test-project.iam.gserviceaccount.com")))
        made[name] = path
    return made


@pytest.fixture
def config(conf_folder: Path, keys: dict[str, Path]) -> Config:
    inline = json.dumps(fake_service_account("inline@test-project.iam.gserviceaccount.com"))
    return load(
        google_conf(
            entry(bucket="data", subdir="team", credentials_json=str(keys["team"]), project="p-team"),
            entry(bucket="data", subdir="team/deep", credentials_json=str(keys["deep"])),
            entry(bucket="inline-bucket", credentials_json=inline),
            entry(bucket="gs://other/sub", project="p-other"),
            entry(subdir="nobucket", credentials_json=str(keys["team"])),
            project="p-section",
            credentials_json=str(keys["section"]),
        ),
        conf_folder,
    )


# url -> (source suffix, auth, principal prefix, project)
CASES = [
    ("gs://data/team/x.bin", "credentials[0]", "file", "team@", "p-team"),
    ("gs://data/team/deep/x.bin", "credentials[1]", "file", "deep@", "p-section"),
    ("gs://data/team/deeper/x.bin", "credentials[0]", "file", "team@", "p-team"),
    ("gs://data/team-b/x.bin", "sdk.google.storage.credentials_json", "file", "section@", "p-section"),
    ("gs://data/x.bin", "sdk.google.storage.credentials_json", "file", "section@", "p-section"),
    ("gs://inline-bucket/x", "credentials[2]", "inline", "inline@", "p-section"),
    (
        "gcs://other/sub/x",
        "credentials[3] (with sdk.google.storage.credentials_json)",
        "file",
        "section@",
        "p-other",
    ),
    ("gs://other/subway/x", "sdk.google.storage.credentials_json", "file", "section@", "p-section"),
]


@pytest.mark.parametrize(("url", "source", "auth", "principal", "project"), CASES)
def test_config_entries(config: Config, url, source, auth, principal, project) -> None:
    details = GCSDriver.describe(parse_url(url), config)
    assert details["resolver"] == "gs-config"
    assert details["source"].endswith(source), details["source"]
    assert details["auth"] == auth
    assert details["principal"].startswith(principal)
    assert details["project"] == project
    assert details["endpoint_url"] is None


def test_most_specific_entry_wins_whatever_the_order(conf_folder: Path, keys) -> None:
    one = entry(bucket="data", subdir="team", credentials_json=str(keys["team"]))
    two = entry(bucket="data", subdir="team/deep", credentials_json=str(keys["deep"]))
    for entries in ((one, two), (two, one)):
        details = GCSDriver.describe(
            parse_url("gs://data/team/deep/x"), load(google_conf(*entries), conf_folder)
        )
        assert details["principal"].startswith("deep@")


def test_entries_that_cannot_apply_are_reported(config: Config) -> None:
    assert any("credentials[4] names no bucket" in message for message in settings_for(config).ignored)


def test_inline_key_is_never_shown(config: Config) -> None:
    resolution = explain("gs://inline-bucket/x", config)
    shown = json.dumps(resolution.to_json())
    private_key = fake_service_account()["private_key"]
    assert "PRIVATE KEY" not in shown and private_key[40:80] not in shown
    assert resolution.to_json()["values"]["credential"] == "****"


def test_credentials_json_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file") as raised:
        read_credentials_json(str(tmp_path / "missing.json"), "where")
    assert "missing.json" in str(raised.value)
    with pytest.raises(ConfigError, match="starts like JSON but does not parse") as raised:
        read_credentials_json('{"private_key": "secret-material', "where")
    assert "secret-material" not in str(raised.value)
    broken = tmp_path / "broken.json"
    broken.write_text("not json")
    with pytest.raises(ConfigError, match="is not a JSON key file"):
        read_credentials_json(str(broken), "where")
    assert read_credentials_json({"type": "service_account"}, "where").kind == "inline"


# -- the chain's order ------------------------------------------------------------------------


def test_emulator_answers_first_and_anonymously(config: Config, monkeypatch) -> None:
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", "http://127.0.0.1:9023")
    details = GCSDriver.describe(parse_url("gs://data/team/x"), config)
    assert (details["resolver"], details["source"], details["auth"]) == (
        "gs-emulator",
        "env STORAGE_EMULATOR_HOST",
        "anonymous",
    )
    assert (details["endpoint_url"], details["endpoint_source"]) == (
        "http://127.0.0.1:9023",
        "env STORAGE_EMULATOR_HOST",
    )


def test_emulator_host_needs_a_scheme(conf_folder: Path, monkeypatch) -> None:
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", "127.0.0.1:9023")
    with pytest.raises(ConfigError, match="STORAGE_EMULATOR_HOST=http://127.0.0.1:9023"):
        explain("gs://b/x", load("", conf_folder))


def test_config_beats_google_application_credentials(config: Config, keys, monkeypatch) -> None:
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(keys["env"]))
    assert explain("gs://data/x", config).resolver == "gs-config"


def test_google_application_credentials_then_adc_then_anonymous(conf_folder: Path, keys, monkeypatch) -> None:
    config = load("", conf_folder)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(keys["env"]))
    details = GCSDriver.describe(parse_url("gs://b/x"), config)
    assert (details["resolver"], details["auth"], details["credentials_file"]) == (
        "gs-env",
        "file",
        str(keys["env"]),
    )
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS")
    resolution = explain("gs://b/x", config)
    assert resolution.resolver == "gs-anonymous"
    assert [a.resolver for a in resolution.attempts] == [
        "gs-emulator",
        "gs-config",
        "gs-env",
        "gs-adc",
        "gs-anonymous",
    ]
    assert "none found" in resolution.attempts[3].note


def test_application_default_credentials_from_gcloud(
    clearml_home: Path, conf_folder: Path, monkeypatch
) -> None:
    gcloud = clearml_home / ".config" / "gcloud"
    gcloud.mkdir(parents=True)
    (gcloud / "application_default_credentials.json").write_text(
        json.dumps(fake_service_account("adc@test-project.iam.gserviceaccount.com"))
    )
    details = GCSDriver.describe(parse_url("gs://b/x"), load("", conf_folder))
    assert (details["resolver"], details["auth"]) == ("gs-adc", "adc")
    assert details["source"] == "application default credentials: service account key"


def test_missing_file_in_google_application_credentials_is_an_error(
    conf_folder: Path, tmp_path, monkeypatch
) -> None:
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "nope.json"))
    with pytest.raises(ConfigError, match="GOOGLE_APPLICATION_CREDENTIALS points at .*nope.json"):
        explain("gs://b/x", load("", conf_folder))


def test_anonymous_can_be_turned_off(conf_folder: Path) -> None:
    resolution = explain("gs://b/x", load("sdk.google.storage.anonymous: false", conf_folder))
    assert resolution.credentials is None
    assert resolution.attempts[-1].note == "sdk.google.storage.anonymous is false"


# -- chunk sizes and timeouts --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("conf", "environ", "upload", "download", "timeout"),
    [
        ("", {}, None, None, 60.0),
        (
            "",
            {"MLFLOW_GCS_UPLOAD_CHUNK_SIZE": "524288", "MLFLOW_GCS_DOWNLOAD_CHUNK_SIZE": "262144"},
            524288,
            262144,
            60.0,
        ),
        (
            "sdk.google.storage.upload_chunk_size: 8 MiB",
            {"MLFLOW_GCS_UPLOAD_CHUNK_SIZE": "524288"},
            8 << 20,
            None,
            60.0,
        ),
        ("", {"MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT": "30"}, None, None, 30.0),
        ("", {"MLFLOW_GCS_DEFAULT_TIMEOUT": "45"}, None, None, 45.0),
        (
            "",
            {"MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT": "-1", "MLFLOW_GCS_DEFAULT_TIMEOUT": "45"},
            None,
            None,
            None,
        ),
        (
            "sdk.google.storage.timeout: 12",
            {"MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT": "30"},
            None,
            None,
            12.0,
        ),
    ],
)
def test_transfer_settings(conf_folder: Path, monkeypatch, conf, environ, upload, download, timeout) -> None:
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    transfer = settings_for(load(conf, conf_folder)).transfer
    assert (transfer.upload_chunk_size, transfer.download_chunk_size, transfer.timeout) == (
        upload,
        download,
        timeout,
    )


@pytest.mark.parametrize(
    ("conf", "environ", "message"),
    [
        (
            "",
            {"MLFLOW_GCS_UPLOAD_CHUNK_SIZE": "1000000"},
            "env MLFLOW_GCS_UPLOAD_CHUNK_SIZE must be a positive multiple of 256 KiB",
        ),
        (
            "",
            {"MLFLOW_GCS_DOWNLOAD_CHUNK_SIZE": "big"},
            "env MLFLOW_GCS_DOWNLOAD_CHUNK_SIZE must be a number of bytes",
        ),
        (
            "sdk.google.storage.download_chunk_size: 300000",
            {},
            "sdk.google.storage.download_chunk_size must be a positive multiple",
        ),
        ("", {"MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT": "soon"}, "must be a number of seconds"),
        ("", {"MLFLOW_ARTIFACT_UPLOAD_DOWNLOAD_TIMEOUT": "0"}, "or -1 for none"),
    ],
)
def test_bad_transfer_settings_are_config_errors(
    conf_folder: Path, monkeypatch, conf, environ, message
) -> None:
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=message):
        settings_for(load(conf, conf_folder))


# -- matching boundaries -----------------------------------------------------------------------

_segment = st.text("ab-", min_size=1, max_size=4)


@settings(max_examples=100, deadline=None, database=None)
@given(subdir=st.lists(_segment, min_size=1, max_size=3), path=st.lists(_segment, min_size=1, max_size=4))
def test_subdir_matches_on_segments_only(subdir, path) -> None:
    raw = {"bucket": "b", "subdir": "/".join(subdir), "credentials_json": "{}"}
    config = Config({"sdk": {"google": {"storage": {"credentials": [raw]}}}}, {}, [])
    found = settings_for(config).match(locate(parse_url("gs://b/" + "/".join(path))))
    assert (found is not None) == (path[: len(subdir)] == subdir)
