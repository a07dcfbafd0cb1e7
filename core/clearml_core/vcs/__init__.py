"""A task's code: capture at creation, the VCS cache, checkout, diff, submodules, git credentials.

* :mod:`~clearml_core.vcs.capture` — ``task create --repo .``: remote URL, branch, commit,
  uncommitted diff and requirements of a local working copy.
* :mod:`~clearml_core.vcs.urls` — every URL form git takes, the cache key, ssh ⇄ https rewrites.
* :mod:`~clearml_core.vcs.auth` — ``agent.git_user`` / ``git_pass`` / ``git_host`` and friends,
  handed to git through a credential helper that reads them from git's environment only.
* :mod:`~clearml_core.vcs.git` — running git: environment, abort, one-sentence failures.
* :mod:`~clearml_core.vcs.cache` — one bare mirror per repository, locked across daemons.
* :mod:`~clearml_core.vcs.checkout` — mirror → working copy → commit → submodules → diff.

The agent's ``code`` stage (:mod:`clearml_core.agent.stages.code`) drives the checkout; nothing
here knows of the agent. Nothing here is imported by ``clearml-core --help``; the agent imports it when a task runs.
"""

from clearml_core.vcs.errors import (
    AuthenticationError,
    DiffError,
    GitCommandError,
    GitNotFoundError,
    RepositoryNotFoundError,
    RepositoryUnreachableError,
    RevisionNotFoundError,
    VcsError,
)

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
