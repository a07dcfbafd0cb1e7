"""``clearml-core storage resolve | cp | ls`` on Azure URLs, in a fresh interpreter each; no secret shown."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from plugins.storage_azure.tests.support import ACCOUNT, KEY, Azurite, containers_conf, entry
from tests.helpers import run_cli

SAS = "sv=2024-01-01&ss=b&srt=sco&sp=rl&sig=cli0secret0signature0value"


@pytest.fixture
def user_conf(clearml_home: Path, azurite: Azurite) -> Path:
    conf = clearml_home / "clearml.conf"
    conf.write_text(
        containers_conf(
            entry(account_name=ACCOUNT, account_key=KEY, account_url=azurite.account_url),
            entry(
                account_name=ACCOUNT,
                container_name="readonly",
                sas_token=SAS,
                account_url=azurite.account_url,
            ),
        )
    )
    return conf


def test_resolve_json_explains_the_config_entry(user_conf: Path, azurite: Azurite) -> None:
    result = run_cli(
        "storage", "resolve", f"azure://{ACCOUNT}.blob.core.windows.net/models/v1/m.pt", "--json"
    )
    assert result.code == 0, result.text
    data = json.loads(result.out)
    assert (data["backend"], data["resolver"]) == ("azure", "azure-config")
    assert data["source"] == "~/clearml.conf: sdk.azure.storage.containers[0]"
    assert (data["account"], data["container"], data["blob"]) == (ACCOUNT, "models", "v1/m.pt")
    assert data["endpoint_url"] == azurite.account_url
    assert data["auth"] == "account_key"
    assert data["key_id"] == ACCOUNT
    assert [t["resolver"] for t in data["tried"]] == ["azure-config"]
    assert KEY not in result.text
    sas = run_cli("storage", "resolve", f"wasbs://readonly@{ACCOUNT}.blob.core.windows.net/x", "--json")
    data = json.loads(sas.out)
    assert (data["auth"], data["source"]) == ("sas", "~/clearml.conf: sdk.azure.storage.containers[1]")
    assert "cli0secret0signature0value" not in sas.text
    table = run_cli("storage", "resolve", f"wasbs://readonly@{ACCOUNT}.blob.core.windows.net/x")
    assert table.code == 0 and "azure-config" in table.out and "cli0secret" not in table.text


def test_resolve_explains_the_environment(clearml_home: Path, azurite: Azurite) -> None:
    env = {"AZURE_STORAGE_CONNECTION_STRING": azurite.connection_string}
    result = run_cli(
        "storage", "resolve", f"wasbs://c@{ACCOUNT}.blob.core.windows.net/a/b", "--json", env=env
    )
    assert result.code == 0, result.text
    data = json.loads(result.out)
    assert (data["resolver"], data["source"], data["auth"]) == (
        "azure-env",
        "env AZURE_STORAGE_CONNECTION_STRING",
        "connection_string",
    )
    assert data["endpoint_url"] == azurite.account_url
    assert [t["resolver"] for t in data["tried"]] == ["azure-config", "azure-env"]
    assert KEY not in result.text


def test_copy_and_list_through_the_cli(user_conf: Path, azurite: Azurite, tmp_path: Path) -> None:
    container = azurite.new_container("cli")
    source = tmp_path / "src"
    (source / "sub").mkdir(parents=True)
    (source / "a.txt").write_text("alpha")
    (source / "sub" / "b.txt").write_text("beta")
    remote = f"azure://{ACCOUNT}.blob.core.windows.net/{container}/run/"
    up = run_cli("storage", "cp", "-r", str(source), remote)
    assert up.code == 0, up.text
    listed = run_cli("storage", "ls", remote, "-r", "--json")
    assert listed.code == 0, listed.text
    assert sorted(item["name"] for item in json.loads(listed.out)) == ["a.txt", "b.txt"]
    back = tmp_path / "back"
    down = run_cli("storage", "cp", "-r", remote, str(back) + "/")
    assert down.code == 0, down.text
    assert (back / "sub" / "b.txt").read_text() == "beta"
    missing = run_cli(
        "storage", "cp", f"azure://{ACCOUNT}.blob.core.windows.net/no-such-container/x", str(tmp_path / "x")
    )
    assert missing.code != 0 and "no-such-container" in missing.err and KEY not in missing.text


def test_missing_credentials_is_one_message_naming_the_fixes(clearml_home: Path, tmp_path: Path) -> None:
    """Without azure-identity (made unimportable here), no resolver answers."""
    probe = (
        "import sys; sys.modules['azure.identity'] = None\n"
        "from clearml_core.cli.main import run\n"
        "sys.argv = ['clearml-core', 'storage', 'cp', sys.argv[1], sys.argv[2]]\n"
        "run()\n"
    )
    source = tmp_path / "f.txt"
    source.write_text("x")
    completed = subprocess.run(
        [sys.executable, "-c", probe, str(source), "azure://acct.blob.core.windows.net/data/f.txt"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 2, completed.stdout + completed.stderr
    err = completed.stderr.strip()
    assert "Traceback" not in err
    assert "no Azure credentials for azure://acct.blob.core.windows.net/data/f.txt" in err
    for needle in (
        "azure-config: no sdk.azure.storage.containers entry matches account 'acct' container 'data'",
        "azure-env:",
        "azure-default-credential: azure-identity is not installed",
        "AZURE_STORAGE_CONNECTION_STRING",
        "AZURE_STORAGE_ACCESS_KEY",
        "AZURE_STORAGE_KEY",
        'account_name: "acct"',
    ):
        assert needle in err, needle


def test_config_show_masks_every_azure_secret(user_conf: Path, azurite: Azurite) -> None:
    user_conf.write_text(
        user_conf.read_text()
        + containers_conf(entry(account_name="other", connection_string=azurite.connection_string))
    )
    result = run_cli("config", "show", "sdk.azure.storage", "--json")
    assert result.code == 0, result.text
    assert KEY not in result.text and "cli0secret0signature0value" not in result.text
