"""State a forked child must not inherit: a parent's threads, locks held at the fork, connections.

Objects that hold such state register a reset here; every reset runs in the child right after a
fork (``os.register_at_fork``), so their hot paths need no ``getpid()`` check of their own.
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

_T = TypeVar("_T")

# keyed weakly: registering an object never keeps it alive; each reset is called with its own key
_RESETS: weakref.WeakKeyDictionary[Any, Callable[[Any], None]] = weakref.WeakKeyDictionary()


def reset_in_forked_child(instance: _T, reset: Callable[[_T], None]) -> None:
    """Call ``reset(instance)`` in every child this process forks, for as long as it lives."""
    _RESETS[instance] = reset


def _reset_all() -> None:
    for instance, reset in list(_RESETS.items()):
        reset(instance)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_all)

__all__ = ["reset_in_forked_child"]
