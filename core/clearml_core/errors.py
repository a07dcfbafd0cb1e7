"""The exception hierarchy.

Every error a user can cause (bad config, bad URL, unknown task, missing credentials) derives from
:class:`UserError`; the CLI prints its message alone and exits with code 2. Anything else is a bug
and keeps its traceback under ``--debug``.
"""

from __future__ import annotations


class ClearMLCoreError(Exception):
    """Base of every error raised on purpose by clearml-core."""


class UserError(ClearMLCoreError):
    """Something the user can fix; the message says what is wrong and what to do."""

    exit_code = 2


class ConfigError(UserError):
    """clearml.conf or an override variable cannot be used as it is."""


class PluginError(UserError):
    """The installed plugins cannot be used together (for example two claim one name)."""


class NotFoundError(UserError):
    """A named thing (task, queue, object, plugin) does not exist."""


__all__ = ["ClearMLCoreError", "ConfigError", "NotFoundError", "PluginError", "UserError"]
