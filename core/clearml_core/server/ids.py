"""ClearML ids for what the control plane keeps by name: 32 hex digits, the same in every process."""

from __future__ import annotations

import hashlib


def queue_id(name: str) -> str:
    """ClearML's id of the control plane's queue ``name``."""
    return hashlib.md5(f"queue:{name}".encode()).hexdigest()  # noqa: S324  (an id, not a secret)


def project_id(name: str) -> str:
    """ClearML's id of the project ``name`` (tasks keep the project's name)."""
    return hashlib.md5(f"project:{name}".encode()).hexdigest()  # noqa: S324  (an id, not a secret)


__all__ = ["project_id", "queue_id"]
