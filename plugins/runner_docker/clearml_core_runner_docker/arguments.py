"""Docker arguments as clearml-agent combines them: the task's, the agent's extra ones, the rules.

The arguments are ``docker run`` switches written as a list (``["--ipc=host", "-e", "A=1"]``), as
a task's container section and ``clearml.conf`` hold them. clearml-agent's order, kept here:

1. the task's arguments (or the default image's) keep only the switches ``agent.docker_args_filters``
   (or ``CLEARML_AGENT_DOCKER_ARGS_FILTERS``) allow, and with ``agent.docker_allow_host_environ``
   their ``-e`` values have ``$VAR`` expanded from the agent's environment;
2. ``agent.extra_docker_arguments`` (or ``CLEARML_AGENT_EXTRA_DOCKER_ARGS``) always have it expanded;
3. ``agent.forbidden_docker_args`` switches are removed from both (with a warning);
4. the two lists are joined, extra arguments first when ``agent.docker_args_extra_precedes_task``,
   and a switch of ``agent.protected_docker_extra_args`` given by the first list drops the same
   switch from the second.

What the engine is then asked for is :mod:`clearml_core_runner_docker.translate`'s work; what the
log shows is :func:`sanitized`.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from clearml_core.config import Config

EXTRA_ARGS_VARIABLE = "CLEARML_AGENT_EXTRA_DOCKER_ARGS"
FILTERS_VARIABLE = "CLEARML_AGENT_DOCKER_ARGS_FILTERS"
HIDE_ENV_VARIABLE = "CLEARML_AGENT_DOCKER_ARGS_HIDE_ENV"
SECRET_VARIABLES = (
    "CLEARML_API_SECRET_KEY",
    "TRAINS_API_SECRET_KEY",
    "CLEARML_AGENT_GIT_PASS",
    "TRAINS_AGENT_GIT_PASS",
    "AWS_SECRET_ACCESS_KEY",
    "AZURE_STORAGE_KEY",
    "CLEARML_AUTH_TOKEN",
)
"""Variables whose values clearml-agent always hides in the docker command it prints."""
MASK = "********"
_ENV_SWITCHES = ("-e", "--env")
_URL_PASSWORD = re.compile(r"^([^:]*:)[^@]+(.*)$")


def normalized(arguments: Iterable[Any] | str | None) -> list[str]:
    """The arguments as a list of tokens: a string is split like a shell line, and a list entry
    that holds a switch with its value (``"-e A=1"``) is split too."""
    if not arguments:
        return []
    if isinstance(arguments, str):
        return shlex.split(arguments)
    tokens: list[str] = []
    for item in arguments:
        text = str(item)
        if text.startswith("-") and any(c.isspace() for c in text.strip()):
            tokens.extend(shlex.split(text))
        elif text.strip():
            tokens.append(text.strip() if text.startswith("-") else text)
    return tokens


def switch_name(token: str) -> str:
    """``--ipc=host`` → ``ipc``, ``-e`` → ``e``."""
    return token.strip().split("=")[0].lstrip("-")


def switches(tokens: Sequence[str]) -> list[str]:
    """The names of the switches in ``tokens`` (clearml-agent's ``get_list_of_switches``)."""
    return [switch_name(token) for token in tokens if token.strip().startswith("-")]


def without_switches(tokens: Sequence[str], excluded: Iterable[str]) -> list[str]:
    """``tokens`` without the switches named in ``excluded`` and the values that follow them."""
    excluded = set(excluded)
    if not excluded:
        return list(tokens)
    kept: list[str] = []
    skipping = False
    for token in tokens:
        if token.strip().startswith("-"):
            skipping = switch_name(token) in excluded
            if not skipping:
                kept.append(token)
            elif "=" in token:
                skipping = False  # the value came with the switch
        elif not skipping:
            kept.append(token)
    return kept


def only_switches(tokens: Sequence[str], included: Iterable[str]) -> list[str]:
    """The switches named in ``included`` with their values (the rest of ``tokens`` left out)."""
    included = set(included)
    kept: list[str] = []
    keeping = False
    for token in tokens:
        if token.strip().startswith("-"):
            keeping = switch_name(token) in included
            if keeping:
                kept.append(token)
                keeping = "=" not in token
        elif keeping:
            kept.append(token)
    return kept


def filtered(tokens: Sequence[str], patterns: Sequence[re.Pattern[str]]) -> list[str]:
    """Only the switches some pattern matches (``re.match`` on the switch as written), each with
    the value that follows it; everything else is dropped (``agent.docker_args_filters``)."""
    if not tokens or not patterns:
        return list(tokens)
    pending = [token.strip() for token in tokens]
    kept: list[str] = []
    while pending:
        token = pending.pop(0)
        if any(pattern.match(token) for pattern in patterns):
            kept.append(token)
            if "=" not in token and pending and not pending[0].startswith("-"):
                kept.append(pending.pop(0))
    return kept


_NO_VALUE_LONG = (
    "rm",
    "read-only",
    "sig-proxy",
    "tty",
    "privileged",
    "publish-all",
    "interactive",
    "init",
    "help",
    "detach",
)
_NO_VALUE_SHORT = ("t", "P", "i", "d")


def expand_environment(tokens: Sequence[str], environ: Mapping[str, str] | None = None) -> list[str]:
    """``-e NAME=$VAR`` / ``${VAR}`` expanded from the agent's environment (clearml-agent's
    ``_resolve_docker_env_args``); unknown variables stay as written."""
    environ = os.environ if environ is None else environ
    result = list(tokens)
    in_env = False
    for index, token in enumerate(tokens):
        if token.startswith("-"):
            in_env = token in _ENV_SWITCHES
            if (token.startswith("--") and token[2:] in _NO_VALUE_LONG) or (
                not token.startswith("--") and token[1:] in _NO_VALUE_SHORT
            ):
                in_env = False
            continue
        if in_env:
            name, sep, value = token.partition("=")
            if sep:
                result[index] = f"{name}={_expand(value, environ)}"
    return result


def _expand(value: str, environ: Mapping[str, str]) -> str:
    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        return environ.get(name, match.group(0))

    return re.sub(r"\$(?:\{(\w+)\}|(\w+))", replace, value)


@dataclass(frozen=True)
class MergedArguments:
    tokens: list[str]
    stripped: list[str]
    """Forbidden switches that were removed (``agent.forbidden_docker_args``)."""

    def warning(self) -> str:
        if not self.stripped:
            return ""
        names = ", ".join(f"--{name}" for name in self.stripped)
        return (
            f"ignoring docker argument(s) {names}; they would override the agent startup script and "
            "prevent the task from running (agent.forbidden_docker_args)"
        )


def merge(config: Config, task_tokens: Sequence[str], extra_tokens: Sequence[str]) -> MergedArguments:
    """The task's and the agent's extra arguments as one list (clearml-agent's ``merge_docker_args``)."""
    forbidden = {str(name).lstrip("-") for name in config.get_list("agent.forbidden_docker_args")}
    present = (set(switches(task_tokens)) | set(switches(extra_tokens))) & forbidden
    stripped = sorted(present)
    task_tokens = without_switches(task_tokens, stripped)
    extra_tokens = without_switches(extra_tokens, stripped)
    protected = {str(name).lstrip("-") for name in config.get_list("agent.protected_docker_extra_args")}
    if config.get_bool("agent.docker_args_extra_precedes_task", True):
        first, second = list(extra_tokens), list(task_tokens)
    else:
        first, second = list(task_tokens), list(extra_tokens)
    overridden = set(switches(first)) & protected
    return MergedArguments([*first, *without_switches(second, overridden)], stripped)


def filter_patterns(config: Config) -> list[re.Pattern[str]]:
    """``CLEARML_AGENT_DOCKER_ARGS_FILTERS`` (shell-split), else ``agent.docker_args_filters``."""
    from clearml_core.errors import ConfigError

    raw = os.environ.get(FILTERS_VARIABLE, "").strip()
    patterns = shlex.split(raw) if raw else [str(p) for p in config.get_list("agent.docker_args_filters")]
    compiled = []
    for pattern in patterns:
        try:
            compiled.append(re.compile(pattern))
        except re.error as error:
            raise ConfigError(
                f"agent.docker_args_filters: {pattern!r} is not a regular expression ({error})"
            ) from None
    return compiled


def extra_arguments(config: Config) -> list[str]:
    """``CLEARML_AGENT_EXTRA_DOCKER_ARGS`` (shell-split), else ``agent.extra_docker_arguments``."""
    raw = os.environ.get(EXTRA_ARGS_VARIABLE, "").strip()
    return normalized(shlex.split(raw) if raw else config.get_list("agent.extra_docker_arguments"))


def combined(config: Config, task_arguments: Sequence[str]) -> MergedArguments:
    """Steps 1-4 of the module docstring: the arguments a task's container gets."""
    tokens = filtered(normalized(task_arguments), filter_patterns(config))
    if config.get_bool("agent.docker_allow_host_environ", False):
        tokens = expand_environment(tokens)
    return merge(config, tokens, expand_environment(extra_arguments(config)))


# -- what the log shows -----------------------------------------------------------------------


def _mask_url(text: str) -> str:
    from urllib.parse import urlparse, urlunparse

    words = re.split(r"(\s)", text)
    for index, word in enumerate(words):
        if "@" not in word:
            continue
        parsed = urlparse(word)
        if _URL_PASSWORD.match(parsed.netloc):
            netloc = _URL_PASSWORD.sub(rf"\g<1>{MASK}\g<2>", parsed.netloc)
            words[index] = urlunparse(parsed._replace(netloc=netloc))
    return "".join(words)


def hidden_keys(config: Config) -> set[str]:
    keys = {str(key) for key in config.get_list("agent.hide_docker_command_env_vars.extra_keys")}
    keys.update(shlex.split(os.environ.get(HIDE_ENV_VARIABLE, "")))
    keys.update(SECRET_VARIABLES)
    return keys


def sanitized(config: Config, tokens: Sequence[str]) -> list[str]:
    """``tokens`` as the task's log shows them (``agent.hide_docker_command_env_vars``): values of
    secret variables as ``********``, URL passwords masked. Off (``enabled: false``, and no
    ``CLEARML_AGENT_DOCKER_ARGS_HIDE_ENV``), only secret-looking names are still masked."""
    from clearml_core.config.redact import is_secret_key

    enabled = config.get_bool("agent.hide_docker_command_env_vars.enabled", True) or bool(
        os.environ.get(HIDE_ENV_VARIABLE)
    )
    urls = enabled and config.get_bool("agent.hide_docker_command_env_vars.parse_embedded_urls", True)
    keys = hidden_keys(config) if enabled else set()
    result = list(tokens)
    after_env = False
    for index, token in enumerate(tokens):
        value_of_env = after_env
        after_env = token in _ENV_SWITCHES
        assignment = None
        if value_of_env:
            assignment = token
        elif token.startswith(("--env=", "-e=")):
            assignment = token.partition("=")[2]
        if assignment is not None:
            name, sep, value = assignment.partition("=")
            if sep:
                if name in keys or is_secret_key(name):
                    value = MASK
                elif urls:
                    value = _mask_url(value)
                shown = f"{name}={value}"
                result[index] = shown if value_of_env else f"{token.partition('=')[0]}={shown}"
        elif urls and not token.startswith("-"):
            result[index] = _mask_url(token)
    return result


__all__ = [
    "MergedArguments",
    "combined",
    "expand_environment",
    "extra_arguments",
    "filter_patterns",
    "filtered",
    "merge",
    "normalized",
    "only_switches",
    "sanitized",
    "switch_name",
    "switches",
    "without_switches",
]
