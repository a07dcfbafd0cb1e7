"""Host key checking against the test sshd: unknown, accepted with the setting, changed, hashed."""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path

import pytest
from clearml_core_storage_sftp.hostkeys import HostKeyChangedError, UnknownHostKeyError

from clearml_core.errors import UserError
from clearml_core.storage.backends import driver_for
from clearml_core.storage.url import parse_url
from plugins.storage_sftp.tests.support import SSHServer, conf_entry, keygen, load


def _fingerprint(public_key: Path) -> str:
    """``SHA256:…`` as ssh-keygen prints it."""
    out = subprocess.run(["ssh-keygen", "-lf", str(public_key)], capture_output=True, text=True, check=True)
    return out.stdout.split()[1]


def _stat(sshd: SSHServer, config) -> None:
    url = parse_url(f"sftp://{sshd.netloc}{sshd.data}/")
    driver_for(url, config).stat(url)


def test_unknown_host_is_refused_before_logging_in(sshd, clearml_home, tmp_path):
    config = load(conf_entry(sshd), tmp_path)
    logins = sshd.logins()
    with pytest.raises(UnknownHostKeyError) as raised:
        _stat(sshd, config)
    message = str(raised.value)
    assert isinstance(raised.value, UserError)
    assert f"[127.0.0.1]:{sshd.port} is not known" in message
    assert _fingerprint(sshd.host_key.with_suffix(".pub")) in message
    assert f"ssh-keyscan -p {sshd.port} 127.0.0.1 >> ~/.ssh/known_hosts" in message
    assert "accept_new_host_keys: true" in message
    assert sshd.logins() == logins, "the client logged in to a server it does not know"
    assert not (clearml_home / ".ssh" / "known_hosts").exists()


def test_new_host_key_accepted_with_the_setting_is_saved_with_a_warning(sshd, clearml_home, tmp_path, caplog):
    config = load(conf_entry(sshd) + "sdk.sftp.accept_new_host_keys: true\n", tmp_path)
    with caplog.at_level(logging.WARNING, logger="clearml_core.storage.sftp"):
        _stat(sshd, config)
    fingerprint = _fingerprint(sshd.host_key.with_suffix(".pub"))
    warnings = [r.getMessage() for r in caplog.records if "accepted the new SSH host key" in r.getMessage()]
    assert len(warnings) == 1 and fingerprint in warnings[0] and "~/.ssh/known_hosts" in warnings[0]
    saved = (clearml_home / ".ssh" / "known_hosts").read_text()
    assert saved == sshd.known_hosts_line()
    # the next connection finds the key and says nothing
    from clearml_core_storage_sftp.pool import reset_pools

    reset_pools()
    caplog.clear()
    strict = load(conf_entry(sshd), tmp_path)
    with caplog.at_level(logging.WARNING, logger="clearml_core.storage.sftp"):
        _stat(sshd, strict)
    assert not [r for r in caplog.records if "host key" in r.getMessage()]


def test_accepted_keys_go_to_the_configured_known_hosts_file(sshd, clearml_home, tmp_path):
    target = tmp_path / "ml_known_hosts"
    config = load(
        conf_entry(sshd) + f'sdk.sftp {{ accept_new_host_keys: true, known_hosts: "{target}" }}\n', tmp_path
    )
    _stat(sshd, config)
    assert target.read_text().startswith(f"[127.0.0.1]:{sshd.port} ssh-ed25519 ")
    assert not (clearml_home / ".ssh" / "known_hosts").exists()


def test_changed_host_key_is_refused_even_when_new_keys_are_accepted(sshd, clearml_home, tmp_path):
    impostor = keygen(tmp_path / "other_host_key")
    known = clearml_home / ".ssh" / "known_hosts"
    known.parent.mkdir()
    kind, blob = impostor.with_suffix(".pub").read_text().split()[:2]
    known.write_text(f"[127.0.0.1]:{sshd.port} {kind} {blob}\n")
    before = known.read_text()
    config = load(conf_entry(sshd) + "sdk.sftp.accept_new_host_keys: true\n", tmp_path)
    logins = sshd.logins()
    with pytest.raises(HostKeyChangedError) as raised:
        _stat(sshd, config)
    message = str(raised.value)
    assert "has CHANGED" in message
    assert _fingerprint(sshd.host_key.with_suffix(".pub")) in message  # what the server sent
    assert _fingerprint(impostor.with_suffix(".pub")) in message  # what known_hosts holds
    assert f"ssh-keygen -R '[127.0.0.1]:{sshd.port}' -f ~/.ssh/known_hosts" in message
    assert known.read_text() == before
    assert sshd.logins() == logins


def test_hashed_known_hosts_entries_are_understood(sshd, clearml_home, tmp_path):
    known = clearml_home / ".ssh" / "known_hosts"
    known.parent.mkdir()
    known.write_text(sshd.known_hosts_line())
    subprocess.run(["ssh-keygen", "-H", "-f", str(known)], check=True, capture_output=True)
    assert known.read_text().startswith("|1|")  # no host name left in clear
    _stat(sshd, load(conf_entry(sshd), tmp_path))
