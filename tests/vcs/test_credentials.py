"""Git credentials against a real ``git http-backend`` with Basic auth, and ssh URL rewriting
through a stand-in ``ssh`` that runs git's upload-pack locally.

The password must work, a wrong one must fail with one clear reason, ``git_host`` must keep it
from other hosts, and it must never show in a process's command line, a log or a task record.
"""

from __future__ import annotations

import base64
import json
import os
import sys
import threading
from pathlib import Path

import pytest

from clearml_core.config import Config
from clearml_core.vcs.checkout import Checkout
from clearml_core.vcs.errors import AuthenticationError, VcsError

from .conftest import HttpGit, Repos, git, make_config, serve

PASSWORD = "s3cr3t-Pa55word"


def conf(clearml_conf: Path, extra: str = "", password: str = PASSWORD) -> Config:
    return make_config(clearml_conf, f'agent {{\n git_user: "alice"\n git_pass: "{password}"\n {extra}\n}}')


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.fixture
def served(repos: Repos, http_git: HttpGit) -> Path:
    project = repos.create("project", {"main.py": "print('private')\n"})
    serve(repos, project, http_git.root, "project.git")
    return project


@pytest.mark.parametrize("cache", [True, False], ids=["cache", "no-cache"])
def test_the_right_password_works(
    tmp_path: Path, clearml_conf: Path, http_git: HttpGit, served: Path, cache: bool
) -> None:
    config = conf(
        clearml_conf, f'vcs_cache {{ enabled: {str(cache).lower()}, path: "{tmp_path / "cache"}" }}'
    )
    lines: list[str] = []
    result = Checkout.from_config(config, log=lines.append).run(
        http_git.url("project.git"), tmp_path / "code", branch="main"
    )
    assert result.commit == git("rev-parse", "HEAD", cwd=served)
    assert basic("alice", PASSWORD) in http_git.authorizations
    assert lines and not any(PASSWORD in line for line in lines)
    # the working copy keeps nothing of the credentials
    assert PASSWORD not in (tmp_path / "code/.git/config").read_text()


def test_a_wrong_password_fails_clearly(
    tmp_path: Path, clearml_conf: Path, http_git: HttpGit, served: Path
) -> None:
    config = conf(clearml_conf, password="wrong-password")
    with pytest.raises(AuthenticationError) as raised:
        Checkout.from_config(config).run(http_git.url("project.git"), tmp_path / "code")
    message = str(raised.value)
    assert "authentication failed (user 'alice')" in message and http_git.url("project.git") in message
    assert "wrong-password" not in message
    assert basic("alice", "wrong-password") in http_git.authorizations
    cache = tmp_path / "home/.clearml/vcs-cache"
    assert not cache.exists() or not [p for p in cache.iterdir() if p.is_dir()]


def test_no_credentials_for_a_server_that_wants_them(
    tmp_path: Path, clearml_conf: Path, http_git: HttpGit, served: Path
) -> None:
    with pytest.raises(AuthenticationError, match="none are configured for 127.0.0.1"):
        Checkout.from_config(make_config(clearml_conf, "")).run(
            http_git.url("project.git"), tmp_path / "code"
        )


def test_git_host_keeps_the_password_from_other_hosts(
    tmp_path: Path, clearml_conf: Path, http_git: HttpGit, served: Path
) -> None:
    config = conf(clearml_conf, 'git_host: "localhost"')
    with pytest.raises(AuthenticationError, match="none are configured"):
        Checkout.from_config(config).run(http_git.url("project.git", host="127.0.0.1"), tmp_path / "code1")
    assert all(
        PASSWORD not in base64.b64decode(h.split()[-1] or b"").decode() for h in http_git.authorizations if h
    )
    assert not any(http_git.authorizations)
    # the same server under the configured host name gets it
    Checkout.from_config(config).run(http_git.url("project.git", host="localhost"), tmp_path / "code2")
    assert basic("alice", PASSWORD) in http_git.authorizations


def test_credentials_in_the_task_url(
    tmp_path: Path, clearml_conf: Path, http_git: HttpGit, served: Path
) -> None:
    url = f"http://alice:{PASSWORD}@127.0.0.1:{http_git.port}/project.git"
    result = Checkout.from_config(make_config(clearml_conf, "")).run(url, tmp_path / "code")
    assert PASSWORD not in json.dumps(result.to_dict())
    assert PASSWORD not in (tmp_path / "code/.git/config").read_text()


def _command_lines() -> dict[int, list[str]]:
    found: dict[int, list[str]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if raw:
            found[int(entry.name)] = raw.decode("utf-8", "replace").split("\0")
    return found


AZURE_HEADERS = {
    "git_use_ms_entra_token": f"Bearer {PASSWORD}",
    "git_use_azure_pat": basic("", PASSWORD),
}


@pytest.mark.parametrize("setting", sorted(AZURE_HEADERS))
def test_azure_devops_tokens_go_in_a_header(
    tmp_path: Path, clearml_conf: Path, http_git: HttpGit, served: Path, setting: str
) -> None:
    header = "Authorization: " + AZURE_HEADERS[setting]
    http_git.accepted.append(AZURE_HEADERS[setting])
    lines: list[str] = []
    result = Checkout.from_config(conf(clearml_conf, f"{setting}: true"), log=lines.append).run(
        http_git.url("project.git"), tmp_path / "code", branch="main"
    )
    assert result.commit == git("rev-parse", "HEAD", cwd=served)
    # sent from the first request on, never as alice's Basic login
    assert http_git.authorizations and set(http_git.authorizations) == {header.split(": ", 1)[1]}
    assert not any(PASSWORD in line or header in line for line in lines)
    assert PASSWORD not in (tmp_path / "code/.git/config").read_text()


def test_a_refused_azure_token_fails_clearly(
    tmp_path: Path, clearml_conf: Path, http_git: HttpGit, served: Path
) -> None:
    with pytest.raises(AuthenticationError, match="authentication failed") as raised:
        Checkout.from_config(conf(clearml_conf, "git_use_ms_entra_token: true")).run(
            http_git.url("project.git"), tmp_path / "code"
        )
    assert PASSWORD not in str(raised.value)
    assert http_git.authorizations[0] == f"Bearer {PASSWORD}"


def test_both_azure_settings_are_a_user_error(clearml_conf: Path) -> None:
    from clearml_core.errors import UserError

    config = conf(clearml_conf, "git_use_ms_entra_token: true\n git_use_azure_pat: true")
    with pytest.raises(UserError, match="set only one"):
        Checkout.from_config(config)


@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="needs /proc")
@pytest.mark.parametrize("setting", ["", *sorted(AZURE_HEADERS)])
def test_the_password_is_in_no_command_line(
    tmp_path: Path, clearml_conf: Path, http_git: HttpGit, served: Path, setting: str
) -> None:
    config = conf(clearml_conf, f"{setting}: true" if setting else "")
    http_git.accepted.extend(AZURE_HEADERS.values())
    http_git.hold.clear()  # the server holds the first request: git is caught mid-clone
    errors: list[BaseException] = []

    def clone() -> None:
        try:
            Checkout.from_config(config).run(http_git.url("project.git"), tmp_path / "code")
        except BaseException as error:
            errors.append(error)

    worker = threading.Thread(target=clone)
    worker.start()
    try:
        assert http_git.held.wait(30), "git never reached the server"
        snapshot = _command_lines()
    finally:
        http_git.hold.set()
        worker.join(60)
    assert not errors, errors
    git_processes = {
        pid: argv
        for pid, argv in snapshot.items()
        if Path(argv[0]).name.startswith("git") and pid != os.getpid()
    }
    # caught: git itself and its http helper, with the URL and the helper's text but no secret
    assert any("clone" in argv for argv in git_processes.values()), snapshot
    assert any(Path(argv[0]).name == "git-remote-http" for argv in git_processes.values()), git_processes
    if not setting:
        assert any(
            any("credential.http://127.0.0.1" in arg for arg in argv) for argv in git_processes.values()
        )
    secrets = [PASSWORD, *(value.split(" ")[-1] for value in AZURE_HEADERS.values())]
    for pid, argv in snapshot.items():
        assert not any(secret in " ".join(argv) for secret in secrets), (pid, argv)


FAKE_SSH = """\
import json, os, sys
with open(os.environ["FAKE_SSH_LOG"], "a") as log:
    log.write(json.dumps(sys.argv[1:]) + "\\n")
os.execvp("sh", ["sh", "-c", sys.argv[-1]])
"""


def test_force_git_ssh_protocol_with_port_and_user(
    tmp_path: Path, clearml_conf: Path, repos: Repos, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = repos.create("project", {"main.py": "print('over ssh')\n"})
    bare = repos.bare(project)
    wrapper = tmp_path / "fake_ssh.py"
    wrapper.write_text(FAKE_SSH)
    calls = tmp_path / "ssh-calls.jsonl"
    monkeypatch.setenv("GIT_SSH_COMMAND", f"{sys.executable} {wrapper}")
    monkeypatch.setenv("GIT_SSH_VARIANT", "ssh")
    monkeypatch.setenv("FAKE_SSH_LOG", str(calls))
    config = make_config(
        clearml_conf,
        'agent { force_git_ssh_protocol: true, force_git_ssh_port: 2222, force_git_ssh_user: "deploy",'
        ' git_user: "alice", git_pass: "unused-over-ssh" }',
    )
    url = f"https://git.example.test{bare}"
    result = Checkout.from_config(config).run(url, tmp_path / "code", branch="main")
    assert result.url == f"ssh://deploy@git.example.test:2222{bare}"
    assert (tmp_path / "code/main.py").read_text() == "print('over ssh')\n"
    argv = json.loads(calls.read_text().splitlines()[0])
    assert "-p" in argv and argv[argv.index("-p") + 1] == "2222"
    assert "deploy@git.example.test" in argv
    assert f"git-upload-pack '{bare}'" == argv[-1]
    assert "unused-over-ssh" not in calls.read_text()


def test_an_ssh_failure_is_reported(
    tmp_path: Path, clearml_conf: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wrapper = tmp_path / "refusing_ssh.py"
    wrapper.write_text(
        "import sys\nsys.stderr.write('git@host: Permission denied (publickey).\\n')\nsys.exit(255)\n"
    )
    monkeypatch.setenv("GIT_SSH_COMMAND", f"{sys.executable} {wrapper}")
    with pytest.raises(VcsError, match="authentication failed"):
        Checkout.from_config(make_config(clearml_conf, "")).run(
            "git@host.example:org/repo.git", tmp_path / "c"
        )


class Stop(Exception):
    pass


def test_an_abort_mid_clone_leaves_no_mirror(
    tmp_path: Path, clearml_conf: Path, http_git: HttpGit, served: Path
) -> None:
    config = conf(clearml_conf, f'vcs_cache {{ path: "{tmp_path / "cache"}" }}')
    stop = threading.Event()

    def check() -> None:
        if stop.is_set():
            raise Stop("aborted")

    http_git.hold.clear()
    raised: list[BaseException] = []

    def clone() -> None:
        try:
            Checkout.from_config(config, check_stop=check).run(http_git.url("project.git"), tmp_path / "code")
        except BaseException as error:
            raised.append(error)

    worker = threading.Thread(target=clone)
    worker.start()
    try:
        assert http_git.held.wait(30)
        stop.set()
        worker.join(30)
    finally:
        http_git.hold.set()
    assert not worker.is_alive()
    assert [type(error) for error in raised] == [Stop]
    assert [p.name for p in (tmp_path / "cache").iterdir() if p.is_dir()] == []
    # and the next attempt clones normally
    stop.clear()
    result = Checkout.from_config(config).run(http_git.url("project.git"), tmp_path / "code2")
    assert result.commit == git("rev-parse", "HEAD", cwd=served)
