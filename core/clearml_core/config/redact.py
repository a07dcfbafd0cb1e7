"""Masking secrets wherever clearml-core prints, logs or raises.

Two layers: values under secret-looking keys are masked when a config tree is shown, and every
secret value seen in the configuration or the environment is registered with the process-wide
:data:`redactor`, which scrubs it from any text on its way out (CLI output, log records, error
messages). Access key ids keep their last four characters so users can tell them apart.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

MASK = "****"

# Key names (config keys, env var names) whose value is wholly secret.
_SECRET_WORDS = {"secret", "password", "passwd", "pass", "token", "passphrase"}
_SECRET_NAMES = {
    "account_key",
    "sas_token",
    "connection_string",
    "private_key",
    "client_secret",
    "api_key",
    "storage_key",
    "credential",
}
# Key names whose value is an identifier that is shown by its last four characters only.
_ACCESS_KEY_NAMES = {"key", "access_key", "access_key_id", "aws_access_key_id", "key_id"}
_ENV_ACCESS_KEYS = {"AWS_ACCESS_KEY_ID", "CLEARML_API_ACCESS_KEY"}

_URL_USERINFO = re.compile(r"(?P<prefix>[A-Za-z][A-Za-z0-9+.-]*://[^:/@\s]*):(?P<password>[^@\s]+)@")
_MIN_SECRET_LENGTH = 4


def _words(name: str) -> list[str]:
    return [word for word in re.split(r"[_\-.\s]+", name.lower()) if word]


def is_secret_key(name: str) -> bool:
    """Whether a config key (last path segment) or env var name holds a secret."""
    lowered = name.lower()
    if lowered in _SECRET_NAMES or lowered.endswith(tuple(f"_{n}" for n in _SECRET_NAMES)):
        return True
    words = _words(name)
    return any(word in _SECRET_WORDS for word in words) or words[-2:] in (
        ["account", "key"],
        ["storage", "key"],
    )


def is_access_key(name: str) -> bool:
    return name.lower() in _ACCESS_KEY_NAMES or name.upper() in _ENV_ACCESS_KEYS


def mask_access_key(value: str) -> str:
    return MASK + value[-4:] if len(value) > 8 else MASK


def mask_url(text: str) -> str:
    """``scheme://user:password@host`` → ``scheme://user:****@host``."""
    return _URL_USERINFO.sub(lambda m: f"{m.group('prefix')}:{MASK}@", text)


def names_the_secret(key: str) -> bool:
    """A key named for the secret itself (``secret``, ``git_pass``, ``api_token``), not one that
    only mentions it (``token_expiration_threshold_sec``, ``enable_git_ask_pass``)."""
    lowered, words = key.lower(), _words(key)
    if lowered in _SECRET_NAMES or lowered.endswith(tuple(f"_{n}" for n in _SECRET_NAMES)):
        return True
    if words[-1:] == ["key"]:
        words = words[:-1]  # secret_key, account_key: the word before "key" tells
        return bool(words) and (words[-1] in _SECRET_WORDS or words[-1] in ("account", "storage"))
    return bool(words) and words[-1] in _SECRET_WORDS


def mask_value(key: str, value: Any, *, hidden: bool = False) -> Any:
    """The printable form of ``value`` stored under ``key``; ``hidden``: a printout rule hides it.

    Booleans are never masked; a number only under a key named for the secret (``pass: 1234``
    in free-form entries, where nothing typed it as text).
    """
    if value is None or value == "" or isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        if names_the_secret(key):
            return MASK
        return mask_access_key(str(value)) if is_access_key(key) else value
    if key.lower() == "credentials_json":
        # a path to a key file is fine to show; inline JSON is the key itself
        return MASK if isinstance(value, str) and value.lstrip().startswith("{") else value
    if hidden or is_secret_key(key):
        return MASK
    if is_access_key(key) and isinstance(value, str):
        return mask_access_key(value)
    if isinstance(value, str):
        return mask_url(value)
    return value


@dataclass(frozen=True)
class PrintoutRules:
    """``agent.sanitize_config_printout``, read as clearml-agent's ``print_configuration`` reads it.

    A key whose name a ``hide_secrets`` or ``hide_secrets_recursive`` pattern finds (``re.search``)
    is hidden with everything under it, unless a ``dont_hide_secrets`` pattern finds it too; so is
    a key a ``docker_commands`` pattern finds (docker argument lists, which may carry ``-e
    TOKEN=…``: clearml-agent masks the secret variables in them, here the whole list). What
    is hidden prints as ``****``, except booleans and numbers. The built-in secret names are
    masked whatever the patterns say.
    """

    hide: tuple[re.Pattern[str], ...] = ()
    dont_hide: tuple[re.Pattern[str], ...] = ()

    SECTION: ClassVar[str] = "agent.sanitize_config_printout"

    @classmethod
    def from_tree(cls, values: Mapping[str, Any]) -> PrintoutRules:
        """The rules a configuration tree sets; a pattern that is no regexp is a :class:`ConfigError`."""
        node: Any = values
        for part in cls.SECTION.split("."):
            node = node.get(part, {}) if isinstance(node, Mapping) else {}
        settings = node if isinstance(node, Mapping) else {}

        def patterns(name: str) -> tuple[re.Pattern[str], ...]:
            listed = settings.get(name) or []
            compiled = []
            for pattern in listed if isinstance(listed, list) else [listed]:
                try:
                    compiled.append(re.compile(str(pattern)))
                except re.error as error:
                    from clearml_core.errors import ConfigError

                    raise ConfigError(
                        f"{cls.SECTION}.{name}: {str(pattern)!r} is not a regular expression ({error})"
                    ) from None
            return tuple(compiled)

        return cls(
            hide=patterns("hide_secrets") + patterns("hide_secrets_recursive") + patterns("docker_commands"),
            dont_hide=patterns("dont_hide_secrets"),
        )

    def hides(self, key: str) -> bool:
        return any(p.search(key) for p in self.hide) and not any(p.search(key) for p in self.dont_hide)


def mask_tree(tree: Any, key: str = "", rules: PrintoutRules | None = None) -> Any:
    """A copy of a nested dict / list with every secret masked; ``key`` is where ``tree`` sits
    (a dotted path: a printout rule on any part of it hides the whole tree)."""
    rules = rules or PrintoutRules()
    parts = [part for part in key.split(".") if part]
    return _masked(tree, parts[-1] if parts else "", rules, any(rules.hides(part) for part in parts))


def _masked(tree: Any, key: str, rules: PrintoutRules, hidden: bool) -> Any:
    if isinstance(tree, Mapping):
        return {k: _masked(v, str(k), rules, hidden or rules.hides(str(k))) for k, v in tree.items()}
    if isinstance(tree, list):
        return [_masked(item, key, rules, hidden) for item in tree]
    return mask_value(key, tree, hidden=hidden)


def secret_values(tree: Any, key: str = "") -> Iterable[tuple[str, str]]:
    """(secret, replacement) pairs found in a nested dict / list, by key name."""
    if isinstance(tree, Mapping):
        for k, v in tree.items():
            yield from secret_values(v, str(k))
    elif isinstance(tree, list):
        for item in tree:
            yield from secret_values(item, key)
    elif isinstance(tree, (int, float)) and not isinstance(tree, bool) and names_the_secret(key):
        if len(str(tree)) >= _MIN_SECRET_LENGTH:
            yield str(tree), MASK
    elif isinstance(tree, str) and tree:
        masked = mask_value(key, tree)
        if masked != tree and len(tree) >= _MIN_SECRET_LENGTH:
            yield tree, masked
        for match in _URL_USERINFO.finditer(tree):
            yield match.group("password"), MASK


class Redactor:
    """Scrubs every registered secret from text."""

    def __init__(self) -> None:
        self._secrets: dict[str, str] = {}
        self._pattern: re.Pattern[str] | None = None
        self._lock = threading.Lock()

    def add(self, secret: str, replacement: str = MASK) -> None:
        if len(secret) < _MIN_SECRET_LENGTH or secret in self._secrets:
            return
        with self._lock:
            self._secrets[secret] = replacement
            self._pattern = None

    def add_tree(self, tree: Any) -> None:
        for secret, replacement in secret_values(tree):
            self.add(secret, replacement)

    def add_environment(self, environ: Mapping[str, str] | None = None) -> None:
        for name, value in (os.environ if environ is None else environ).items():
            if is_secret_key(name) or name.upper().endswith("_KEY"):
                self.add(value)
            elif is_access_key(name):
                self.add(value, mask_access_key(value))
            for match in _URL_USERINFO.finditer(value):
                self.add(match.group("password"))

    def __call__(self, text: str) -> str:
        if not text:
            return text
        text = mask_url(text)
        if not self._secrets:
            return text
        pattern = self._pattern
        if pattern is None:
            with self._lock:
                # longest first, so a secret containing another is replaced whole
                ordered = sorted(self._secrets, key=len, reverse=True)
                pattern = self._pattern = re.compile("|".join(map(re.escape, ordered)))
        return pattern.sub(lambda m: self._secrets[m.group(0)], text)


redactor = Redactor()


class RedactingFilter(logging.Filter):
    """Applies :data:`redactor` to every log record that passes through a handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redactor(record.getMessage())
        record.args = None
        return True
