"""What can go wrong with a task's code, each with a message fit to be the task's reason.

Every error says which repository (credentials masked) and what to do. They derive from
:class:`~clearml_core.errors.UserError`: a wrong URL, a commit that was never pushed or a wrong
password are the user's to fix, not bugs of the agent.
"""

from __future__ import annotations

from clearml_core.errors import UserError


class VcsError(UserError):
    """The task's code cannot be captured, fetched or checked out."""


class GitNotFoundError(VcsError):
    """No ``git`` executable on this machine."""


class RepositoryNotFoundError(VcsError):
    """The repository does not exist, or the server does not show it to these credentials."""


class AuthenticationError(VcsError):
    """The server refused the credentials (or wanted some and none were configured)."""


class RepositoryUnreachableError(VcsError):
    """The server cannot be reached (name resolution, connection refused, TLS)."""


class RevisionNotFoundError(VcsError):
    """The commit, branch or tag the task names is not in the repository."""


class DiffError(VcsError):
    """The task's recorded uncommitted changes do not apply to its commit."""


class GitCommandError(VcsError):
    """Any other failing git command; the message carries git's own last lines."""


__all__ = [
    "AuthenticationError",
    "DiffError",
    "GitCommandError",
    "GitNotFoundError",
    "RepositoryNotFoundError",
    "RepositoryUnreachableError",
    "RevisionNotFoundError",
    "VcsError",
]
