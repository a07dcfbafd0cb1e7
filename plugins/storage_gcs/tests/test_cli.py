"""``clearml-core storage resolve | cp | ls`` on gs:// URLs, in a fresh interpreter each; no key shown."""

from __future__ import annotations

import json
from pathlib import Path

from plugins.storage_gcs.tests.support import Emulator, entry, fake_service_account, google_conf
from tests.helpers import run_cli

NO_METADATA = {"NO_GCE_CHECK": "true", "GCE_METADATA_HOST": "127.0.0.1:9", "GCE_METADATA_IP": "127.0.0.1:9"}


def test_resolve_json_with_the_emulator(clearml_home: Path, gcs_emulator: Emulator) -> None:
    env = {**NO_METADATA, "STORAGE_EMULATOR_HOST": gcs_emulator.endpoint}
    result = run_cli("storage", "resolve", "gs://bucket/a/b.bin", "--json", env=env)
    assert result.code == 0, result.text
    data = json.loads(result.out)
    assert (data["backend"], data["resolver"], data["source"], data["auth"]) == (
        "gs",
        "gs-emulator",
        "env STORAGE_EMULATOR_HOST",
        "anonymous",
    )
    assert (data["bucket"], data["key"], data["endpoint_url"]) == ("bucket", "a/b.bin", gcs_emulator.endpoint)


def test_resolve_never_shows_an_inline_key(clearml_home: Path) -> None:
    key = fake_service_account("inline@test-project.iam.gserviceaccount.com")
    (clearml_home / "clearml.conf").write_text(
        google_conf(entry(bucket="models", subdir="team", credentials_json=json.dumps(key)), project="p1")
    )
    result = run_cli("storage", "resolve", "gs://models/team/m.pt", "--json", env=NO_METADATA)
    assert result.code == 0, result.text
    data = json.loads(result.out)
    assert (data["resolver"], data["auth"], data["project"]) == ("gs-config", "inline", "p1")
    assert data["principal"] == "inline@test-project.iam.gserviceaccount.com"
    secret_part = key["private_key"].splitlines()[5]
    assert "PRIVATE KEY" not in result.text and secret_part not in result.text
    shown = run_cli("config", "show", "sdk.google.storage", "--json", env=NO_METADATA)
    assert shown.code == 0 and secret_part not in shown.text
    table = run_cli("storage", "resolve", "gs://models/team/m.pt", env=NO_METADATA)
    assert table.code == 0 and secret_part not in table.text


def test_copy_and_list_through_the_cli(clearml_home: Path, gcs_emulator: Emulator, tmp_path: Path) -> None:
    bucket = gcs_emulator.new_bucket("cli")
    env = {**NO_METADATA, "STORAGE_EMULATOR_HOST": gcs_emulator.endpoint}
    source = tmp_path / "src"
    (source / "sub").mkdir(parents=True)
    (source / "a.txt").write_text("alpha")
    (source / "sub" / "b.txt").write_text("beta")
    up = run_cli("storage", "cp", "-r", str(source), f"gs://{bucket}/run/", env=env)
    assert up.code == 0, up.text
    listed = run_cli("storage", "ls", f"gs://{bucket}/run/", "-r", "--json", env=env)
    assert sorted(item["name"] for item in json.loads(listed.out)) == ["a.txt", "b.txt"]
    back = tmp_path / "back"
    down = run_cli("storage", "cp", "-r", f"gs://{bucket}/run/", str(back) + "/", env=env)
    assert down.code == 0, down.text
    assert (back / "sub" / "b.txt").read_text() == "beta"


def test_missing_credentials_is_one_message_naming_the_fixes(clearml_home: Path, tmp_path: Path) -> None:
    (clearml_home / "clearml.conf").write_text("sdk.google.storage.anonymous: false\n")
    source = tmp_path / "f.txt"
    source.write_text("x")
    result = run_cli("storage", "cp", str(source), "gs://team-bucket/models/f.txt", env=NO_METADATA)
    assert result.code == 2, result.text
    err = result.err.strip()
    assert "Traceback" not in err
    assert "no Google Cloud Storage credentials for gs://team-bucket/models/f.txt" in err
    for needle in (
        "gs-emulator: STORAGE_EMULATOR_HOST is not set",
        "gs-config: no sdk.google.storage.credentials entry matches gs://team-bucket/models/f.txt",
        "gs-env: GOOGLE_APPLICATION_CREDENTIALS is not set",
        "gs-adc: none found",
        "gs-anonymous: sdk.google.storage.anonymous is false",
        "bucket: 'team-bucket'",
        "gcloud auth application-default login",
    ):
        assert needle in err, needle


def test_bad_chunk_size_is_a_user_error(clearml_home: Path, gcs_emulator: Emulator, tmp_path: Path) -> None:
    env = {
        **NO_METADATA,
        "STORAGE_EMULATOR_HOST": gcs_emulator.endpoint,
        "MLFLOW_GCS_UPLOAD_CHUNK_SIZE": "1000",
    }
    source = tmp_path / "f.txt"
    source.write_text("x")
    result = run_cli("storage", "cp", str(source), "gs://b/f.txt", env=env)
    assert result.code == 2, result.text
    assert "MLFLOW_GCS_UPLOAD_CHUNK_SIZE must be a positive multiple of 256 KiB" in result.err
