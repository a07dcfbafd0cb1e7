"""Repository URLs, the cache key, the ssh ⇄ https rewrites and which credentials apply where."""

from __future__ import annotations

from pathlib import Path

import pytest

from clearml_core.vcs.auth import CREDENTIAL_HELPER, PASS_VARIABLE, USER_VARIABLE, Credential, GitAuth
from clearml_core.vcs.urls import looks_like_url, parse_repo_url, rewrite_url

from .conftest import make_config


@pytest.mark.parametrize(
    ("text", "scheme", "host", "port", "path", "user"),
    [
        ("https://github.com/org/repo.git", "https", "github.com", None, "/org/repo.git", ""),
        ("https://u:p@gitlab.example.com:8443/g/r", "https", "gitlab.example.com", 8443, "/g/r", "u"),
        ("ssh://git@host.example:2222/org/repo.git", "ssh", "host.example", 2222, "/org/repo.git", "git"),
        ("git+ssh://git@host/org/repo", "ssh", "host", None, "/org/repo", "git"),
        ("git@github.com:org/repo.git", "ssh", "github.com", None, "org/repo.git", "git"),
        ("git://127.0.0.1:9418/repo", "git", "127.0.0.1", 9418, "/repo", ""),
        ("file:///srv/repos/a.git", "file", "", None, "/srv/repos/a.git", ""),
    ],
)
def test_parse(text: str, scheme: str, host: str, port: int | None, path: str, user: str) -> None:
    url = parse_repo_url(text)
    assert (url.scheme, url.host, url.port, url.path, url.user) == (scheme, host, port, path, user)


def test_a_local_path_is_a_file_url(tmp_path: Path) -> None:
    url = parse_repo_url(str(tmp_path))
    assert url.is_local and url.path == str(tmp_path.resolve())
    assert url.public() == tmp_path.resolve().as_uri()
    assert not looks_like_url(str(tmp_path))
    assert looks_like_url("git@github.com:org/repo.git") and looks_like_url("https://h/r")


def test_public_drops_the_password() -> None:
    url = parse_repo_url("https://user:tok%40en@host/org/repo.git")
    assert url.password == "tok@en"
    assert url.public() == "https://user@host/org/repo.git"
    assert "tok" not in str(url)
    assert url.without_credentials().public() == "https://host/org/repo.git"


def test_one_cache_key_for_every_form_of_one_repository() -> None:
    forms = [
        "https://github.com/Org/Repo.git",
        "https://user:pw@GitHub.com/Org/Repo",
        "git@github.com:Org/Repo.git",
        "ssh://git@github.com/Org/Repo.git/",
    ]
    keys = {parse_repo_url(form).cache_key() for form in forms}
    assert keys == {"github.com/Org/Repo"}
    names = {parse_repo_url(form).cache_dir_name() for form in forms}
    assert len(names) == 1 and next(iter(names)).startswith("github.com_Org_Repo.")
    # another port is another server: another mirror
    assert parse_repo_url("http://h:8080/r").cache_key() != parse_repo_url("http://h:9090/r").cache_key()


def test_translate_ssh_only_with_credentials() -> None:
    ssh = parse_repo_url("git@github.com:org/repo.git")
    assert rewrite_url(ssh, has_credentials=False) == ssh
    assert rewrite_url(ssh, has_credentials=True).public() == "https://github.com/org/repo.git"
    assert rewrite_url(ssh, has_credentials=True, translate_ssh=False) == ssh
    ported = parse_repo_url("ssh://git@host:2222/org/repo.git")
    assert (
        rewrite_url(ported, has_credentials=True, replacement_scheme="http").public()
        == "http://host/org/repo.git"
    )


def test_force_ssh_rewrites_https() -> None:
    https = parse_repo_url("https://github.com/org/repo.git")
    assert (
        rewrite_url(https, has_credentials=True, force_ssh=True).public()
        == "ssh://git@github.com/org/repo.git"
    )
    forced = rewrite_url(https, has_credentials=False, force_ssh=True, ssh_user="deploy", ssh_port=2222)
    assert forced.public() == "ssh://deploy@github.com:2222/org/repo.git"
    ssh = parse_repo_url("git@github.com:org/repo.git")
    assert rewrite_url(ssh, has_credentials=True, force_ssh=True) == ssh


def test_credentials_limited_to_git_host(clearml_conf: Path) -> None:
    config = make_config(
        clearml_conf,
        'agent { git_user: "alice", git_pass: "pw1", git_host: "gitlab.example.com",'
        ' git { extra_credentials: [{ user: "bob", pass: "pw2", host: "github.com" }] } }',
    )
    auth = GitAuth.from_config(config)
    gitlab = auth.access("https://gitlab.example.com/g/r.git")
    assert gitlab.env == {USER_VARIABLE: "alice", PASS_VARIABLE: "pw1"}
    assert gitlab.config == (
        "credential.https://gitlab.example.com.helper=",
        f"credential.https://gitlab.example.com.helper={CREDENTIAL_HELPER}",
    )
    assert auth.access("https://github.com/o/r").env[USER_VARIABLE] == "bob"
    elsewhere = auth.access("https://bitbucket.org/o/r")
    assert not elsewhere.has_credentials and elsewhere.config == ()
    # nothing secret in what goes on git's command line
    assert all("pw1" not in item and "alice" not in item for item in gitlab.config)


def test_git_host_from_the_environment(clearml_conf: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLEARML_AGENT_GIT_USER", "env-user")
    monkeypatch.setenv("CLEARML_AGENT_GIT_PASS", "env-pass")
    monkeypatch.setenv("CLEARML_AGENT_GIT_HOST", "git.example.com")
    auth = GitAuth.from_config(make_config(clearml_conf, ""))
    assert auth.access("https://git.example.com/r").env[PASS_VARIABLE] == "env-pass"
    assert not auth.access("https://other.example.com/r").has_credentials


def test_git_host_as_a_url_prefix() -> None:
    auth = GitAuth([Credential("u", "p", "https://github.com/my-org")], match_prefix=True)
    assert auth.access("https://github.com/my-org/repo.git").has_credentials
    assert not auth.access("https://github.com/other-org/repo.git").has_credentials


def test_ssh_urls_become_https_when_credentials_exist() -> None:
    auth = GitAuth([Credential("u", "p", "github.com")])
    access = auth.access("git@github.com:org/repo.git")
    assert access.url.public() == "https://github.com/org/repo.git" and access.has_credentials
    untouched = auth.access("git@gitlab.com:org/repo.git")
    assert untouched.url.public() == "git@gitlab.com:org/repo.git" and not untouched.has_credentials
    no_translate = GitAuth([Credential("u", "p")], translate_ssh=False).access("git@github.com:org/repo.git")
    assert no_translate.url.is_ssh and not no_translate.has_credentials


def test_credentials_in_the_url_win_and_leave_it() -> None:
    auth = GitAuth([Credential("config-user", "config-pass")])
    access = auth.access("https://url-user:url-pass@host/r.git")
    assert access.url.public() == "https://host/r.git"
    assert access.env == {USER_VARIABLE: "url-user", PASS_VARIABLE: "url-pass"}


def test_force_ssh_settings_from_config(clearml_conf: Path) -> None:
    config = make_config(
        clearml_conf,
        "agent { force_git_ssh_protocol: true, force_git_ssh_port: 2200, force_git_ssh_user: deploy,"
        ' git_user: "u", git_pass: "p" }',
    )
    access = GitAuth.from_config(config).access("https://github.com/org/repo.git")
    assert access.url.public() == "ssh://deploy@github.com:2200/org/repo.git"
    assert not access.has_credentials  # user and password are for http(s) only
