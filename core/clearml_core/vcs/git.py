"""Running git: one place that builds its environment, stops it on abort, and turns its failures
into one clear sentence.

Every git process gets ``GIT_TERMINAL_PROMPT=0`` and its own session (no terminal to prompt
on), the repository's ``-c`` options and credential variables from
:class:`~clearml_core.vcs.auth.GitAccess`, and none of the ``GIT_DIR``-like variables a caller
might have inherited. Its output is kept; what is shown (log lines, error messages) has the
known secrets replaced by ``****``.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from clearml_core.vcs.auth import BASE_ENVIRONMENT, GitAccess
from clearml_core.vcs.errors import (
    AuthenticationError,
    GitCommandError,
    GitNotFoundError,
    RepositoryNotFoundError,
    RepositoryUnreachableError,
    VcsError,
)

POLL_SEC = 0.1
MASK = "****"
MIN_SECRET_LENGTH = 4

# variables that would point git at another repository than the one we name
_LOCATION_VARIABLES = (
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_COMMON_DIR",
    "GIT_NAMESPACE",
    "GIT_PREFIX",
)

_AUTH_FAILED = (
    "authentication failed",
    "invalid username or password",
    "incorrect username or password",
    "http basic: access denied",
    "returned error: 401",
    "returned error: 403",
    "permission denied (publickey",
    "host key verification failed",
)
_NO_CREDENTIALS = ("could not read username", "could not read password", "terminal prompts disabled")
_NOT_FOUND = (
    "repository not found",
    "does not appear to be a git repository",
    "returned error: 404",
    "not found",
    "repository not exported",
    "no such file or directory",
    "not a git repository",
)
_UNREACHABLE = (
    "could not resolve host",
    "could not resolve hostname",
    "connection refused",
    "failed to connect",
    "couldn't connect",
    "network is unreachable",
    "connection timed out",
    "operation timed out",
    "connection reset",
    "ssl certificate problem",
    "unable to access",
)


@dataclass(frozen=True)
class GitResult:
    code: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.code == 0

    def last_lines(self, count: int = 3) -> str:
        lines = [line.strip() for line in (self.stderr or self.stdout).splitlines() if line.strip()]
        lines = [line for line in lines if not line.startswith(("hint:", "Cloning into", "remote: Counting"))]
        return " / ".join(lines[-count:])


def git_binary() -> str:
    found = shutil.which("git")
    if not found:
        raise GitNotFoundError(
            "git is not installed on this machine (or not on PATH); install git to run tasks from repositories"
        )
    return found


class Git:
    """Runs git commands for one purpose (a task's checkout, a capture at task creation).

    ``log`` receives the command lines (secrets masked); ``check_stop`` is called while a command
    runs and may raise to stop it (the agent passes :meth:`TaskContext.check`): the command's
    whole process group is then killed and the exception propagates.
    """

    def __init__(
        self,
        *,
        log: Callable[[str], None] | None = None,
        check_stop: Callable[[], None] | None = None,
        secrets: Sequence[str] = (),
    ) -> None:
        self.binary = git_binary()
        self._log = log
        self._check_stop = check_stop
        self._secrets: list[str] = []
        self.add_secrets(*secrets)

    def add_secrets(self, *secrets: str) -> None:
        """Passwords to mask in whatever this runner shows (too short ones would mask ordinary
        text; the credential helper keeps them off git's output anyway)."""
        self._secrets.extend(s for s in secrets if len(s) >= MIN_SECRET_LENGTH and s not in self._secrets)

    def scrub(self, text: str) -> str:
        for secret in sorted(self._secrets, key=len, reverse=True):
            text = text.replace(secret, MASK)
        return text

    def log(self, message: str) -> None:
        if self._log is not None:
            self._log(self.scrub(message))

    def environment(
        self, access: GitAccess | None = None, extra: Mapping[str, str] | None = None
    ) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in _LOCATION_VARIABLES}
        env.update(BASE_ENVIRONMENT)
        if access is not None:
            env.update(access.env)
        if extra:
            env.update(extra)
        return env

    def run(
        self,
        *args: str,
        cwd: Path | str | None = None,
        access: GitAccess | None = None,
        env: Mapping[str, str] | None = None,
        input: bytes | None = None,
        check: bool = True,
        show: bool = False,
        config: Sequence[str] = (),
    ) -> GitResult:
        """Run ``git <args>``; ``show`` logs the command first. With ``check``, a failure raises
        :class:`GitCommandError` (use :func:`classify` for network operations)."""
        options: list[str] = []
        for item in (*(access.config if access else ()), *config):
            options += ["-c", item]
        argv = [self.binary, *options, *args]
        if show:
            self.log("git " + " ".join(_shown(arg) for arg in args))
        try:
            process = subprocess.Popen(
                argv,
                cwd=str(cwd) if cwd is not None else None,
                env=self.environment(access, env),
                stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
            )
        except FileNotFoundError as error:  # cwd vanished, or git did
            raise GitCommandError(f"cannot run git in {cwd}: {error}") from None
        pending = input
        while True:
            try:
                out, err = process.communicate(pending, timeout=POLL_SEC)
                break
            except subprocess.TimeoutExpired:
                pending = None
                if self._check_stop is not None:
                    try:
                        self._check_stop()
                    except BaseException:
                        _kill_group(process)
                        raise
        result = GitResult(
            process.returncode,
            self.scrub(out.decode("utf-8", "replace")),
            self.scrub(err.decode("utf-8", "replace")),
        )
        if check and not result.ok:
            raise GitCommandError(
                f"git {args[0]} failed: {result.last_lines() or f'exit code {result.code}'}"
            )
        return result

    def output(self, *args: str, cwd: Path | str | None = None) -> str:
        """The stripped standard output of a local, read-only command that must succeed."""
        return self.run(*args, cwd=cwd).stdout.strip()


def _shown(arg: str) -> str:
    return arg if arg and " " not in arg else repr(arg)


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except (ProcessLookupError, PermissionError):
            break
        try:
            process.wait(2.0)
            break
        except subprocess.TimeoutExpired:
            continue
    process.communicate()


def classify(result: GitResult, access: GitAccess, action: str = "fetch") -> VcsError:
    """One sentence for a failed clone or fetch of ``access.url``: which repository, what went
    wrong, what to do, and git's own last words."""
    text = result.stderr.lower()
    url = access.url.public()
    said = result.last_lines() or f"exit code {result.code}"
    if any(pattern in text for pattern in _NO_CREDENTIALS) and not access.has_credentials:
        return AuthenticationError(
            f"cannot {action} {url}: the server wants credentials and none are configured for "
            f"{access.url.host_port or url}; set agent.git_user and agent.git_pass (and agent.git_host) "
            f"in clearml.conf or CLEARML_AGENT_GIT_USER / CLEARML_AGENT_GIT_PASS (git: {said})"
        )
    if any(pattern in text for pattern in (*_AUTH_FAILED, *_NO_CREDENTIALS)):
        who = f"user {access.credential_user!r}" if access.has_credentials else "no credentials"
        return AuthenticationError(
            f"cannot {action} {url}: authentication failed ({who}); check agent.git_user / agent.git_pass "
            f"and agent.git_host, or the ssh key for ssh URLs (git: {said})"
        )
    if any(pattern in text for pattern in _UNREACHABLE) and "404" not in text:
        return RepositoryUnreachableError(
            f"cannot {action} {url}: the server cannot be reached (git: {said})"
        )
    if any(pattern in text for pattern in _NOT_FOUND):
        return RepositoryNotFoundError(
            f"cannot {action} {url}: the repository does not exist or is not visible to these credentials "
            f"(git: {said})"
        )
    return GitCommandError(f"cannot {action} {url} (git: {said})")


__all__ = ["Git", "GitResult", "classify", "git_binary"]
