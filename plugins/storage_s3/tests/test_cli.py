"""``clearml-core storage resolve | presign | cp`` on s3:// URLs, in a fresh interpreter each."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest

from plugins.storage_s3.tests.support import KEY, SECRET, MotoServer, endpoint_conf
from tests.helpers import run_cli

TOKEN = "session-token-never-shown-0001"


@pytest.fixture
def user_conf(clearml_home: Path, moto: MotoServer, monkeypatch) -> Path:
    conf = clearml_home / "clearml.conf"
    conf.write_text(
        'sdk.aws.s3 { region: "eu-west-1", key: "AKIADEFAULTKEY000099", secret: "default-secret-value" }\n'
        + endpoint_conf(moto, token=TOKEN)
    )
    return conf


def test_resolve_json_explains_the_config_entry(user_conf: Path, moto: MotoServer) -> None:
    result = run_cli("storage", "resolve", f"s3://{moto.netloc}/bucket/path/model.pt", "--json")
    assert result.code == 0, result.text
    data = json.loads(result.out)
    assert data["backend"] == "s3"
    assert data["resolver"] == "s3-config"
    assert data["source"] == "~/clearml.conf: sdk.aws.s3.credentials[0]"
    assert (data["bucket"], data["key"]) == ("bucket", "path/model.pt")
    assert data["endpoint_url"] == f"http://{moto.netloc}"
    assert data["region"] == "eu-west-1"  # inherited from sdk.aws.s3
    assert (data["secure"], data["verify"], data["multipart"]) == (False, True, True)
    assert data["access_key_id"] == "****" + KEY[-4:]
    assert [t["resolver"] for t in data["tried"]] == ["s3-config"]
    for secret in (SECRET, TOKEN, KEY, "default-secret-value"):
        assert secret not in result.text


def test_resolve_explains_the_environment(clearml_home: Path) -> None:
    env = {"AWS_ACCESS_KEY_ID": "AKIAFROMENVIRONMENT7", "AWS_SECRET_ACCESS_KEY": "environment-secret-value"}
    result = run_cli("storage", "resolve", "s3://some-bucket/a/b", "--json", env=env)
    assert result.code == 0, result.text
    data = json.loads(result.out)
    assert (data["resolver"], data["source"]) == ("s3-env", "env AWS_ACCESS_KEY_ID")
    assert data["endpoint_url"] is None  # AWS itself
    assert data["access_key_id"] == "****ENT7"
    assert [t["resolver"] for t in data["tried"]] == ["s3-config", "s3-env"]
    assert "environment-secret-value" not in result.text
    table = run_cli("storage", "resolve", "s3://some-bucket/a/b", env=env)
    assert table.code == 0 and "s3-env" in table.out
    assert "environment-secret-value" not in table.text and "AKIAFROMENVIRONMENT7" not in table.text


def test_presign_put_then_get(user_conf: Path, moto: MotoServer) -> None:
    bucket = moto.new_bucket("cli")
    url = f"s3://{moto.netloc}/{bucket}/shared/report.txt"
    upload = run_cli("storage", "presign", url, "--method", "put", "--expires", "120")
    assert upload.code == 0, upload.text
    request = urllib.request.Request(
        upload.out.strip(), data=b"report", method="PUT", headers={"Content-Type": "text/plain"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200
    download = run_cli("storage", "presign", url)
    assert download.code == 0, download.text
    assert "X-Amz-Expires=3600" in download.out
    with urllib.request.urlopen(download.out.strip(), timeout=30) as response:
        assert response.read() == b"report"
    assert SECRET not in upload.text + download.text
    wrong = run_cli("storage", "presign", url, "--method", "delete")
    assert wrong.code == 2 and "get or put" in wrong.err


def test_missing_credentials_is_one_clear_line(clearml_home: Path, tmp_path: Path) -> None:
    source = tmp_path / "file.txt"
    source.write_text("x")
    result = run_cli("storage", "cp", str(source), "s3://nobody-configured-this/file.txt")
    assert result.code == 2, result.text
    lines = [line for line in result.err.splitlines() if line.strip()]
    assert len(lines) == 1, result.err
    assert "no S3 credentials for s3://nobody-configured-this/file.txt" in lines[0]
    assert "AWS_ACCESS_KEY_ID" in lines[0] and "sdk.aws.s3.credentials" in lines[0]
    assert "Traceback" not in result.text


def test_config_beats_the_environment(user_conf: Path, moto: MotoServer) -> None:
    env = {
        "AWS_ACCESS_KEY_ID": "AKIAFROMENVIRONMENT7",
        "AWS_SECRET_ACCESS_KEY": "environment-secret-value",
        "AWS_DEFAULT_REGION": "sa-east-1",
    }
    for url, expected_key in (
        (f"s3://{moto.netloc}/b/k", KEY),
        ("s3://aws-bucket/k", "AKIADEFAULTKEY000099"),
    ):
        result = run_cli("storage", "resolve", url, "--json", env=env)
        assert result.code == 0, result.text
        data = json.loads(result.out)
        assert data["resolver"] == "s3-config", data
        assert data["access_key_id"] == "****" + expected_key[-4:]
        assert data["region"] == "eu-west-1"


def test_cp_reports_the_bytes_copied_to_from_and_within_s3(
    user_conf: Path, moto: MotoServer, tmp_path: Path
) -> None:
    bucket = moto.new_bucket("sizes")
    base = f"s3://{moto.netloc}/{bucket}/"
    source = tmp_path / "src"
    (source / "sub").mkdir(parents=True)
    (source / "a.bin").write_bytes(b"a" * 1000)
    (source / "sub" / "b.bin").write_bytes(b"b" * 2345)

    def copied(*args: str) -> dict:
        result = run_cli("storage", "cp", *args, "--json")
        assert result.code == 0, result.text
        return json.loads(result.out)

    def sizes(data: dict) -> list[tuple[str, int]]:
        return [(entry["destination"].rsplit("/", 1)[1], entry["size"]) for entry in data["files"]]

    up = copied(str(source / "a.bin"), base + "one/a.bin")
    assert (sizes(up), up["bytes"]) == ([("a.bin", 1000)], 1000)
    tree = copied("-r", str(source), base + "tree/")
    assert (sorted(sizes(tree)), tree["count"], tree["bytes"]) == (
        [("a.bin", 1000), ("b.bin", 2345)],
        2,
        3345,
    )
    down = copied(base + "tree/sub/b.bin", str(tmp_path / "down.bin"))
    assert (sizes(down), down["bytes"]) == ([("down.bin", 2345)], 2345)
    back = copied("-r", base + "tree/", str(tmp_path / "back"))
    assert sorted(sizes(back)) == [("a.bin", 1000), ("b.bin", 2345)] and back["bytes"] == 3345
    within = copied(base + "tree/a.bin", base + "copy/a.bin")
    assert (sizes(within), within["bytes"]) == ([("a.bin", 1000)], 1000)
    folders = copied("-r", base + "tree/", base + "copies/")
    assert folders["bytes"] == 3345 and folders["count"] == 2
    plain = run_cli("storage", "cp", str(source / "sub" / "b.bin"), base + "plain.bin")
    assert plain.code == 0 and plain.out.strip() == "copied 1 file (2.3 KB)"
