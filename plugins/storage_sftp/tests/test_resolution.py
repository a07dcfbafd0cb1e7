"""Where an sftp:// URL points and which resolver logs in: sdk.sftp entries, the URL, ~/.ssh and the agent.

Table-driven for the entry matching rules, hypothesis for the host[:port] boundaries; the agent and
~/.ssh/config cases also log in to the test sshd for real.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
from pathlib import Path

import pytest
from clearml_core_storage_sftp.errors import MissingCredentialsError
from clearml_core_storage_sftp.settings import SFTPSettings, local_user, settings_for
from hypothesis import given, settings
from hypothesis import strategies as st

from clearml_core.config import Config
from clearml_core.credentials import explain
from clearml_core.errors import ConfigError
from clearml_core.storage.backends import driver_for
from clearml_core.storage.url import parse_url
from plugins.storage_sftp.tests.support import SSHServer, conf_entry, keygen, load
from tests.helpers import wait_for


@pytest.fixture
def keys(tmp_path: Path) -> dict[str, str]:
    """Key files the entries name (resolvers check that they exist; nothing logs in with them)."""
    found = {}
    for name in ("k0", "k1", "k2", "k3"):
        path = tmp_path / name
        path.write_text("not read by these tests\n")
        found[name] = str(path)
    return found


ENTRIES = """
sdk.sftp.credentials: [
    {{ host: "files", key_filename: "{k1}" }}
    {{ host: "files:2222", key_filename: "{k2}" }}
    {{ host: "files", username: "ml", key_filename: "{k3}" }}
]
"""


@pytest.mark.parametrize(
    ("url", "entry", "user"),
    [
        ("sftp://files/x", 0, None),
        ("sftp://files:22/x", 0, None),
        ("sftp://FILES/x", 0, None),
        ("sftp://files:2222/x", 1, None),
        ("sftp://files:222/x", None, None),  # a whole port: 222 never serves 2222
        ("sftp://ml@files/x", 2, "ml"),  # the user's own entry beats the host's, whatever the order
        ("sftp://other@files/x", 0, "other"),  # the ml entry is for ml only
        ("sftp://files.example.com/x", None, None),  # a whole host name
        ("sftp://filesystem/x", None, None),
    ],
)
def test_entry_matching(url, entry, user, keys, tmp_path):
    config = load(ENTRIES.format(**keys), tmp_path)
    location = settings_for(config).locate(url)
    assert (location.entry.index if location.entry else None) == entry
    assert location.user == (user or local_user())
    resolution = explain(url, config)
    if entry is None:
        assert resolution.credentials is None or resolution.resolver != "sftp-config"
    else:
        assert resolution.resolver == "sftp-config"
        assert resolution.source.endswith(f"sdk.sftp.credentials[{entry}]")
        assert resolution.credentials["key_filename"] == [keys[f"k{entry + 1}"]]
        assert resolution.credentials["auth"] == "key_file"


@settings(max_examples=100, deadline=None)
@given(
    host=st.from_regex(r"[a-z][a-z0-9]{0,6}(\.[a-z]{1,4})?", fullmatch=True),
    other=st.from_regex(r"[a-z][a-z0-9.-]{0,10}", fullmatch=True),
    entry_port=st.one_of(st.none(), st.integers(1, 65535)),
    url_port=st.one_of(st.none(), st.integers(1, 65535)),
)
def test_entries_serve_their_whole_host_and_port(host, other, entry_port, url_port):
    written = f"{host}:{entry_port}" if entry_port else host
    sftp = SFTPSettings(
        Config({"sdk": {"sftp": {"credentials": [{"host": written, "password": "pw-1"}]}}}, {}, [])
    )
    matches = sftp.match(host, url_port, None) is not None
    assert matches == ((entry_port or 22) == (url_port or 22))
    if other != host:
        assert sftp.match(other, url_port, None) is None


def test_entries_inherit_the_section(keys, tmp_path):
    config = load(
        f'sdk.sftp {{ key_filename: "{keys["k0"]}", passphrase: "section-passphrase", '
        'credentials: [ { host: "files", username: "ml" } ] }\n',
        tmp_path,
    )
    creds = explain("sftp://files/x", config).credentials
    assert creds.resolver == "sftp-config" and creds.source.endswith("sdk.sftp.credentials[0]")
    assert creds["key_filename"] == [keys["k0"]] and creds["username"] == "ml"
    assert creds.masked()["passphrase"] == "****"
    # no entry: the section itself answers
    creds = explain("sftp://elsewhere/x", config).credentials
    assert creds.source.endswith("sdk.sftp.key_filename") and creds["username"] == local_user()


def test_entry_without_a_login_warns_once_and_the_chain_goes_on(tmp_path, caplog):
    config = load('sdk.sftp.credentials: [ { host: "files", username: "ml" } ]\n', tmp_path)
    with caplog.at_level(logging.WARNING, logger="clearml_core.storage.sftp"):
        first = explain("sftp://files/x", config)
        explain("sftp://files/y", config)
    assert first.credentials is None
    assert [a.resolver for a in first.attempts] == ["sftp-config", "sftp-url", "sftp-ssh"]
    assert "matches but sets no key_filename or password" in first.attempts[0].note
    assert len([r for r in caplog.records if "has no key_filename or password" in r.getMessage()]) == 1
    # its username still applies
    assert settings_for(config).locate("sftp://files/x").user == "ml"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('sdk.sftp.credentials: [ { username: "x", password: "p" } ]', "names no host"),
        ('sdk.sftp.credentials: [ { host: "a", user: "x" } ]', "unknown field"),
        ('sdk.sftp.credentials: [ { host: "me@a" } ]', "holds a user"),
        ('sdk.sftp.credentials: [ { host: "a:99999" } ]', "invalid port"),
        ('sdk.sftp.credentials: [ { host: "a:22", port: 2222 } ]', "port says 2222"),
        ('sdk.sftp.credentials: [ "a" ]', "must be an object"),
    ],
)
def test_bad_entries_are_config_errors(text, problem, tmp_path):
    with pytest.raises(ConfigError, match=problem):
        settings_for(load(text + "\n", tmp_path))


def test_missing_key_file_is_a_config_error(tmp_path):
    config = load(f'sdk.sftp.credentials: [ {{ host: "a", key_filename: "{tmp_path}/nope" }} ]\n', tmp_path)
    with pytest.raises(ConfigError, match=r"sdk.sftp.credentials\[0\]: key_filename .*/nope does not exist"):
        explain("sftp://a/x", config)


def test_password_in_the_url_works_but_warns_once(tmp_path, caplog):
    config = load("", tmp_path)
    with caplog.at_level(logging.WARNING, logger="clearml_core.storage.sftp"):
        resolution = explain("sftp://bob:s3cr3t-pw@files:2200/x", config)
        explain("sftp://bob:s3cr3t-pw@files:2200/other", config)
    creds = resolution.credentials
    assert (resolution.resolver, creds["auth"], creds["password"]) == ("sftp-url", "password", "s3cr3t-pw")
    assert resolution.source == "URL sftp://bob:****@files:2200/x"
    warnings = [r.getMessage() for r in caplog.records if "password written in the URL" in r.getMessage()]
    assert len(warnings) == 1
    assert "s3cr3t-pw" not in caplog.text and "s3cr3t-pw" not in str(resolution.to_json())


def test_config_beats_a_password_in_the_url(keys, tmp_path):
    config = load(ENTRIES.format(**keys), tmp_path)
    resolution = explain("sftp://bob:s3cr3t-pw@files/x", config)
    assert resolution.resolver == "sftp-config"
    assert [a.resolver for a in resolution.attempts] == ["sftp-config"]


def test_ssh_config_alias(clearml_home, tmp_path):
    ssh = clearml_home / ".ssh"
    ssh.mkdir()
    keygen(ssh / "lab_key")
    (ssh / "config").write_text(
        "Host lab\n  HostName 10.1.2.3\n  Port 2200\n  User scientist\n  IdentityFile ~/.ssh/lab_key\n"
        "Host *\n  ServerAliveInterval 30\n"
    )
    config = load("", tmp_path)
    location = settings_for(config).locate("sftp://lab/data/x")
    assert (location.host, location.port, location.user, location.alias) == (
        "10.1.2.3",
        2200,
        "scientist",
        "lab",
    )
    assert location.user_source == "~/.ssh/config" and location.port_source == "~/.ssh/config"
    resolution = explain("sftp://lab/data/x", config)
    assert resolution.resolver == "sftp-ssh"
    assert resolution.credentials["key_filename"] == [str(ssh / "lab_key")]
    assert resolution.source == "~/.ssh/config IdentityFile ~/.ssh/lab_key"
    # what the URL says wins over ~/.ssh/config
    location = settings_for(config).locate("sftp://me@lab:22/x")
    assert (location.host, location.port, location.user) == ("10.1.2.3", 22, "me")
    # hosts the file does not name keep their own name, and ssh's default key files apply
    other = settings_for(config).locate("sftp://other/x")
    assert (other.host, other.alias, other.port) == ("other", None, 22)
    assert explain("sftp://other/x", config).credentials is None
    keygen(ssh / "id_ed25519")
    assert explain("sftp://other/x", config).credentials["key_filename"] == [str(ssh / "id_ed25519")]


def test_no_credentials_anywhere_says_what_to_do(sshd, tmp_path):
    config = load("", tmp_path)
    url = parse_url(f"sftp://{sshd.netloc}/tmp/x")
    with pytest.raises(MissingCredentialsError) as raised:
        driver_for(url, config).stat(url)
    message = str(raised.value)
    for part in ("sftp-config", "sftp-url", "sftp-ssh", "sdk.sftp.credentials", "ssh-add", "IdentityFile"):
        assert part in message
    assert f'host: "{sshd.netloc}"' in message


# -- for real, against the test sshd -------------------------------------------------------------


def test_ssh_config_alias_logs_in(sshd: SSHServer, clearml_home, known_hosts, tmp_path):
    (clearml_home / ".ssh" / "config").write_text(
        f"Host testbox\n  HostName 127.0.0.1\n  Port {sshd.port}\n  User {sshd.user}\n"
        f"  IdentityFile {sshd.client_key}\n"
    )
    config = load("", tmp_path)
    url = parse_url(f"sftp://testbox{sshd.data}/")
    assert driver_for(url, config).stat(url).is_dir


@pytest.fixture
def agent(sshd: SSHServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A real ssh-agent holding the test client key; stopped by its PID."""
    socket_path = tmp_path / "agent.sock"
    process = subprocess.Popen(["ssh-agent", "-D", "-a", str(socket_path)], stdout=subprocess.DEVNULL)
    try:
        assert wait_for(lambda: socket_path.exists() or process.poll() is not None)
        if process.returncode is not None:
            raise RuntimeError("ssh-agent exited")
        env = {**os.environ, "SSH_AUTH_SOCK": str(socket_path)}
        subprocess.run(["ssh-add", str(sshd.client_key)], env=env, check=True, capture_output=True)
        monkeypatch.setenv("SSH_AUTH_SOCK", str(socket_path))
        yield socket_path
    finally:
        os.kill(process.pid, signal.SIGTERM)
        process.wait(timeout=10)


def test_ssh_agent_logs_in(sshd: SSHServer, agent, known_hosts, tmp_path):
    config = load("", tmp_path)
    url = f"sftp://{sshd.user}@{sshd.netloc}{sshd.data}/"
    resolution = explain(url, config)
    assert resolution.resolver == "sftp-ssh"
    assert resolution.credentials["auth"] == "agent" and resolution.credentials["allow_agent"] is True
    assert resolution.source == "ssh agent (SSH_AUTH_SOCK, 1 key)"
    assert driver_for(url, config).stat(parse_url(url)).is_dir


def test_identities_only_keeps_the_agent_out(sshd, agent, clearml_home, tmp_path):
    (clearml_home / ".ssh").mkdir()
    (clearml_home / ".ssh" / "config").write_text("Host *\n  IdentitiesOnly yes\n")
    resolution = explain(f"sftp://{sshd.netloc}/x", load("", tmp_path))
    assert resolution.credentials is None
    assert "IdentitiesOnly" in resolution.attempts[-1].note


def test_entry_key_wins_over_the_agent(sshd, agent, known_hosts, tmp_path):
    config = load(conf_entry(sshd), tmp_path)
    resolution = explain(f"sftp://{sshd.netloc}/x", config)
    assert resolution.resolver == "sftp-config"
    assert resolution.credentials.get("allow_agent") is None  # only what the entry names is offered
