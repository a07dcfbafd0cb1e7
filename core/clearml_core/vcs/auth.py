"""Git credentials as clearml-agent's configuration describes them, handed to git safely.

Settings (``agent.*`` in clearml.conf; ``CLEARML_AGENT_GIT_USER`` / ``_PASS`` / ``_HOST`` too):

* ``git_user`` / ``git_pass``: user and password (or token) for http(s) repositories.
* ``git_host``: when set, they are used only for repositories on this host (``host`` or
  ``host:port``); ``git_host_match_prefix``: ``git_host`` is a prefix of the whole URL instead
  (``https://github.com/my-org``).
* ``git.extra_credentials``: more ``{user, pass, host}`` entries, tried after the first.
* ``translate_ssh`` / ``translate_ssl_replacement_scheme``: an ssh URL becomes https when there are
  credentials for its host.
* ``force_git_ssh_protocol`` / ``force_git_ssh_port`` / ``force_git_ssh_user``: clone over ssh
  even when the task names an https URL.
* ``git_use_ms_entra_token`` / ``git_use_azure_pat`` (one at most): ``git_pass`` is an Azure
  DevOps Microsoft Entra token, sent as ``Authorization: Bearer``, or a personal access token,
  sent as ``Authorization: Basic`` of ``:<PAT>`` — the headers Azure DevOps documents.

A URL that carries ``user:password@`` itself uses those, ahead of the configuration.

How the secret reaches git: never in a URL or a command-line argument. Git gets
``-c credential.<scope>.helper=`` (which empties the helper list for that scope) and then
``-c credential.<scope>.helper=!f() {…}; f`` — a shell function that prints ``username=`` and
``password=`` from two variables set only in the environment of that git process. Process
listings show the function's text, not the secret; the task's own process never gets the
variables. A token sent as a header reaches git the same way: as ``http.<scope>.extraHeader``
through ``GIT_CONFIG_COUNT`` / ``GIT_CONFIG_KEY_n`` / ``GIT_CONFIG_VALUE_n``, never ``-c``.
``GIT_TERMINAL_PROMPT=0`` makes a missing or wrong password fail at once instead of
waiting for a prompt nobody answers.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from clearml_core.errors import UserError
from clearml_core.vcs.urls import RepoUrl, rewrite_url

if TYPE_CHECKING:
    from clearml_core.config import Config

USER_VARIABLE = "CLEARML_CORE_GIT_USER"
PASS_VARIABLE = "CLEARML_CORE_GIT_PASS"  # noqa: S105  (the name of a variable, not a secret)

CREDENTIAL_HELPER = (
    '!f() { test "$1" = get || exit 0; '
    f'printf "username=%s\\npassword=%s\\n" "${USER_VARIABLE}" "${PASS_VARIABLE}"; }}; f'
)
"""The helper git runs (through ``sh``) to learn the credentials: reads them from its environment."""

BASE_ENVIRONMENT = {
    "GIT_TERMINAL_PROMPT": "0",  # fail instead of asking on a terminal
    "GCM_INTERACTIVE": "never",  # Git Credential Manager, when the machine has it
    "LC_ALL": "C",  # git's messages in English, so failures can be recognised
    "LANGUAGE": "C",
}


@dataclass(frozen=True)
class Credential:
    user: str
    password: str = field(repr=False)
    host: str = ""
    """Where they apply: ``""`` everywhere, else a host (prefix mode: a URL prefix)."""


@dataclass(frozen=True)
class GitAccess:
    """How git reaches one repository: the URL to give it, and what goes into its environment
    and ``-c`` options (nothing secret in the options)."""

    url: RepoUrl
    """The (possibly rewritten) URL, without password."""
    config: tuple[str, ...] = ()
    """``-c key=value`` pairs for every git command on this repository."""
    env: Mapping[str, str] = field(default_factory=dict, repr=False)
    """Variables for git's environment: the secret lives here only."""
    credential_user: str = ""
    secrets: tuple[str, ...] = field(default=(), repr=False)
    """What must be masked in anything git prints (the password, a header made from it)."""

    @property
    def has_credentials(self) -> bool:
        return bool(self.secrets or self.credential_user)


def _host_matches(url: RepoUrl, host: str, *, prefix: bool) -> bool:
    if not host:
        return True
    if prefix:
        public = url.without_credentials().public()
        bare = public.split("://", 1)[-1]
        wanted = host.strip()
        return public.startswith(wanted) or bare.startswith(wanted.split("://", 1)[-1])
    wanted = host.strip().lower().split("://", 1)[-1].rstrip("/")
    return wanted in (url.host.lower(), url.host_port.lower())


@dataclass
class GitAuth:
    """The credential and URL-rewriting settings of one agent (see the module docstring)."""

    credentials: list[Credential] = field(default_factory=list)
    match_prefix: bool = False
    translate_ssh: bool = True
    replacement_scheme: str = "https"
    force_ssh: bool = False
    ssh_user: str | None = None
    ssh_port: int | None = None
    header: Literal["", "bearer", "azure-pat"] = ""
    """Send the password as an ``Authorization`` header (Azure DevOps) instead of to a prompt."""

    @classmethod
    def from_config(cls, config: Config) -> GitAuth:
        credentials = []
        user = config.get_str("agent.git_user", "") or ""
        password = config.get_str("agent.git_pass", "") or ""
        if user or password:
            credentials.append(Credential(user, password, config.get_str("agent.git_host", "") or ""))
        for extra in config.get_list("agent.git.extra_credentials"):
            if isinstance(extra, Mapping) and (extra.get("user") or extra.get("pass")):
                credentials.append(
                    Credential(
                        str(extra.get("user") or ""),
                        str(extra.get("pass") or ""),
                        str(extra.get("host") or ""),
                    )
                )
        port = config.get("agent.force_git_ssh_port")
        entra = config.get_bool("agent.git_use_ms_entra_token", False)
        pat = config.get_bool("agent.git_use_azure_pat", False)
        if entra and pat:
            raise UserError(
                "agent.git_use_ms_entra_token and agent.git_use_azure_pat are both set: git_pass is one or the "
                "other, set only one (CLEARML_AGENT_GIT_USE_MS_ENTRA_TOKEN / CLEARML_AGENT_GIT_USE_AZURE_PAT)"
            )
        return cls(
            credentials=credentials,
            match_prefix=config.get_bool("agent.git_host_match_prefix", False),
            translate_ssh=config.get_bool("agent.translate_ssh", True),
            replacement_scheme=config.get_str("agent.translate_ssl_replacement_scheme", "https") or "https",
            force_ssh=config.get_bool("agent.force_git_ssh_protocol", False),
            ssh_user=(config.get_str("agent.force_git_ssh_user") or None),
            ssh_port=int(port) if port not in (None, "") else None,
            header="bearer" if entra else ("azure-pat" if pat else ""),
        )

    def credential_for(self, url: RepoUrl) -> Credential | None:
        """The first configured credential whose host matches ``url`` (an http(s) URL)."""
        for credential in self.credentials:
            if _host_matches(url, credential.host, prefix=self.match_prefix):
                return credential
        return None

    def access(self, url: RepoUrl | str) -> GitAccess:
        """What git needs to reach ``url``: the rewritten URL and the credential plumbing."""
        from clearml_core.vcs.urls import parse_repo_url

        parsed = parse_repo_url(url) if isinstance(url, str) else url
        embedded = Credential(parsed.user, parsed.password) if parsed.is_http and parsed.password else None
        clean = parsed.without_credentials()
        # would there be credentials once the URL is https? (translate_ssh asks exactly that)
        as_https = rewrite_url(clean, has_credentials=True, replacement_scheme=self.replacement_scheme)
        has_credentials = embedded is not None or self.credential_for(as_https) is not None
        target = rewrite_url(
            clean,
            has_credentials=has_credentials,
            translate_ssh=self.translate_ssh,
            replacement_scheme=self.replacement_scheme,
            force_ssh=self.force_ssh,
            ssh_user=self.ssh_user,
            ssh_port=self.ssh_port,
        )
        if not target.is_http:
            return GitAccess(target)
        credential = embedded or self.credential_for(target)
        if credential is None:
            return GitAccess(target)
        scope = f"{target.scheme}://{target.host_port}"
        if self.header and credential is not embedded:
            value = self._header_value(credential.password)
            return GitAccess(
                target,
                env=_config_environment(f"http.{scope}/.extraHeader", value),
                credential_user=credential.user,
                secrets=(credential.password, value.split(" ")[-1]),
            )
        return GitAccess(
            target,
            config=(f"credential.{scope}.helper=", f"credential.{scope}.helper={CREDENTIAL_HELPER}"),
            env={USER_VARIABLE: credential.user, PASS_VARIABLE: credential.password},
            credential_user=credential.user,
            secrets=(credential.password,) if credential.password else (),
        )

    def _header_value(self, password: str) -> str:
        if self.header == "bearer":
            return f"Authorization: Bearer {password}"
        return "Authorization: Basic " + base64.b64encode(f":{password}".encode()).decode("ascii")

    def secrets(self) -> list[str]:
        """Every configured password, for scrubbing text that might echo one."""
        return [c.password for c in self.credentials if c.password]


def _config_environment(key: str, value: str) -> dict[str, str]:
    """``key = value`` as git configuration through the environment, after any the agent's own
    environment already passes that way."""
    try:
        index = max(0, int(os.environ.get("GIT_CONFIG_COUNT", "0")))
    except ValueError:
        index = 0
    return {
        "GIT_CONFIG_COUNT": str(index + 1),
        f"GIT_CONFIG_KEY_{index}": key,
        f"GIT_CONFIG_VALUE_{index}": value,
    }


def describe(access: GitAccess) -> dict[str, Any]:
    """What a log line or the task's runtime may say about how a repository was reached."""
    return {
        "url": access.url.public(),
        "credentials": f"user {access.credential_user!r}" if access.has_credentials else "none",
    }


__all__ = [
    "BASE_ENVIRONMENT",
    "CREDENTIAL_HELPER",
    "PASS_VARIABLE",
    "USER_VARIABLE",
    "Credential",
    "GitAccess",
    "GitAuth",
    "describe",
]
