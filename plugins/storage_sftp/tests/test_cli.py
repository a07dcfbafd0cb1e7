"""``clearml-core storage`` on sftp:// URLs, each in a fresh interpreter: resolve, cp, ls, rm, errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from plugins.storage_sftp.tests.support import SSHServer, conf_entry
from tests.helpers import run_cli

PASSWORD = "hunter2-never-shown"
PASSPHRASE = "passphrase-never-shown"


def test_resolve_json_explains_the_config_entry(sshd: SSHServer, sftp_conf: Path) -> None:
    sftp_conf.write_text(conf_entry(sshd, passphrase=PASSPHRASE) + "sdk.sftp.max_connections: 6\n")
    result = run_cli("storage", "resolve", f"sftp://{sshd.netloc}/srv/models/m.pt", "--json")
    assert result.code == 0, result.text
    data = json.loads(result.out)
    assert (data["backend"], data["resolver"]) == ("sftp", "sftp-config")
    assert data["source"] == "~/clearml.conf: sdk.sftp.credentials[0]"
    assert (data["host"], data["port"], data["path"], data["user"]) == (
        "127.0.0.1",
        sshd.port,
        "/srv/models/m.pt",
        sshd.user,
    )
    assert data["user_source"] == "sdk.sftp.credentials[0]"
    assert (data["auth"], data["key_files"], data["agent"]) == ("key_file", [str(sshd.client_key)], False)
    assert data["entry"] == "sdk.sftp.credentials[0]"
    assert data["known_hosts"][0] == "~/.ssh/known_hosts"
    assert (data["accept_new_host_keys"], data["max_connections"]) == (False, 6)
    assert data["values"]["passphrase"] == "****"
    assert [t["resolver"] for t in data["tried"]] == ["sftp-config"]
    assert PASSPHRASE not in result.text


def test_resolve_password_in_the_url(clearml_home: Path) -> None:
    url = f"sftp://alice:{PASSWORD}@files.example.com:2022/data/x.bin"
    result = run_cli("storage", "resolve", url, "--json")
    assert result.code == 0, result.text
    data = json.loads(result.out)
    assert (data["resolver"], data["auth"], data["user"], data["port"]) == (
        "sftp-url",
        "password",
        "alice",
        2022,
    )
    assert data["url"] == "sftp://alice:****@files.example.com:2022/data/x.bin"
    assert [t["resolver"] for t in data["tried"]] == ["sftp-config", "sftp-url"]
    assert "password written in the URL" in result.err
    assert PASSWORD not in result.text
    table = run_cli("storage", "resolve", url)
    assert table.code == 0 and "sftp-url" in table.out and PASSWORD not in table.text


def test_resolve_ssh_config_alias(clearml_home: Path) -> None:
    ssh = clearml_home / ".ssh"
    ssh.mkdir()
    (ssh / "lab_key").write_text("a key file\n")
    (ssh / "config").write_text("Host lab\n  HostName 10.0.0.7\n  User ml\n  IdentityFile ~/.ssh/lab_key\n")
    result = run_cli("storage", "resolve", "sftp://lab/~/runs/", "--json")
    assert result.code == 0, result.text
    data = json.loads(result.out)
    assert (data["resolver"], data["host"], data["host_alias"], data["user"]) == (
        "sftp-ssh",
        "10.0.0.7",
        "lab",
        "ml",
    )
    assert (data["user_source"], data["port"], data["key_files"]) == ("~/.ssh/config", 22, ["~/.ssh/lab_key"])


def test_resolve_with_nothing_configured(clearml_home: Path) -> None:
    result = run_cli("storage", "resolve", "sftp://files/x", "--json")
    assert result.code == 0, result.text
    data = json.loads(result.out)
    assert data["resolver"] is None and data["auth"] is None
    assert [t["resolver"] for t in data["tried"]] == ["sftp-config", "sftp-url", "sftp-ssh"]
    assert all(t["note"] for t in data["tried"])


def test_copy_list_and_delete_through_the_cli(sshd: SSHServer, sftp_conf: Path, tmp_path: Path) -> None:
    source = tmp_path / "run"
    (source / "ckpt").mkdir(parents=True)
    (source / "metrics.json").write_text('{"loss": 0.1}')
    (source / "ckpt" / "model.bin").write_bytes(b"\0" * 5000)
    base = sshd.base_url()
    copied = run_cli("storage", "cp", "-r", str(source), base)
    assert copied.code == 0, copied.text
    assert "copied 2 files" in copied.out
    listed = run_cli("storage", "ls", base, "-r", "--json")
    assert listed.code == 0, listed.text
    found = {Path(item["url"]).name: item["size"] for item in json.loads(listed.out)}
    assert found == {"metrics.json": 13, "model.bin": 5000}
    got = run_cli("storage", "get", base + "ckpt/model.bin")
    assert got.code == 0, got.text
    assert Path(got.out.strip()).read_bytes() == b"\0" * 5000
    removed = run_cli("storage", "rm", "-r", base)
    assert removed.code == 0 and "deleted 2 objects" in removed.out
    assert not Path(base.split(sshd.netloc, 1)[1]).exists()


def test_refused_password_is_one_line_without_the_password(sshd: SSHServer, known_hosts: Path) -> None:
    url = f"sftp://{sshd.user}:{PASSWORD}@{sshd.netloc}{sshd.data}/x.txt"
    result = run_cli("storage", "ls", url)
    assert result.code == 2, result.text
    assert f"cannot log in to {sshd.user}@{sshd.netloc}: the server refused a password" in result.err
    assert "the server accepts publickey" in result.err
    assert "Traceback" not in result.err
    assert PASSWORD not in result.text


def test_unknown_host_key_through_the_cli(sshd: SSHServer, clearml_conf: Path) -> None:
    clearml_conf.write_text(conf_entry(sshd))
    result = run_cli("storage", "ls", f"sftp://{sshd.netloc}{sshd.data}/")
    assert result.code == 2, result.text
    assert "is not known" in result.err and f"ssh-keyscan -p {sshd.port} 127.0.0.1" in result.err


def test_the_plugin_module_imports_no_paramiko() -> None:
    probe = (
        "import sys, clearml_core_storage_sftp as p\n"
        "specs = [*p.clearml_storage_backends(), *p.clearml_credential_resolvers(), *p.clearml_config_defaults()]\n"
        "assert specs\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('paramiko', 'cryptography', 'nacl', 'bcrypt')))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
    listed = run_cli("plugins", "list", "--json")
    assert listed.code == 0, listed.text
    assert "storage_sftp" in listed.out
