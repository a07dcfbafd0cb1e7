"""The TLS context of ClearML's ``api.verify_certificate``: true, false, or a CA bundle's path."""

from __future__ import annotations

import os
import ssl
from typing import Any


def verifying_context(verify: Any) -> ssl.SSLContext:
    """A client context for ``verify`` (``api.verify_certificate``): a path names the CA bundle to
    trust, a false value turns checking off, anything else checks against the system's CAs."""
    if isinstance(verify, str) and verify.lower() not in ("true", "false", "1", "0", ""):
        return ssl.create_default_context(cafile=os.path.expanduser(verify))
    context = ssl.create_default_context()
    if str(verify).lower() in ("false", "0"):
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


__all__ = ["verifying_context"]
