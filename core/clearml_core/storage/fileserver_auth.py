"""Session tokens for a ClearML file server that asks for one, got the way ClearML's SDK gets them.

A ClearML server with fixed users (or ``fileserver.auth.enabled``) serves files only to callers
holding a session token. ClearML's SDK signs in to the API server (``auth.login`` with the
``api.credentials`` access key and secret, HTTP Basic) and sends ``Authorization: Bearer <token>``
with every request to its file server; the HTTP driver does the same for URLs under
``api.files_server`` when credentials are configured. The token is fetched once per process and
again when the file server refuses it.
"""

from __future__ import annotations

import base64
import json
import logging
import ssl
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

log = logging.getLogger("clearml_core.storage")


class FileServerAuth:
    """The bearer token for the configured ClearML server's file server, or none."""

    def __init__(self, config: Any, ssl_context: Callable[[], ssl.SSLContext], timeout: float = 60.0) -> None:
        self._key = (
            (config.get_str("api.credentials.access_key", "") or "").strip() if config is not None else ""
        )
        self._secret = (
            (config.get_str("api.credentials.secret_key", "") or "").strip() if config is not None else ""
        )
        self._api = ""
        if self._key and self._secret:
            from clearml_core.storage.servers import api_server

            api = api_server(config)
            self._api = api if api.lower().startswith(("http://", "https://")) else ""
        self._ssl_context = ssl_context
        self._timeout = timeout
        self._token: str | None = None
        self._failed = False
        self._lock = threading.Lock()

    @property
    def configured(self) -> bool:
        return bool(self._api)

    def headers(self) -> dict[str, str]:
        """``{"Authorization": "Bearer …"}``, signing in on first use; ``{}`` when that fails."""
        if not self._api:
            return {}
        with self._lock:
            if self._token is None and not self._failed:
                self._token = self._login()
                self._failed = self._token is None
            token = self._token
        return {"Authorization": f"Bearer {token}"} if token else {}

    def refresh(self) -> bool:
        """Forget the token (the file server refused it); whether a new one may be had."""
        with self._lock:
            had = self._token is not None
            self._token = None
            self._failed = False
        return had and bool(self._api)

    def _login(self) -> str | None:
        pair = base64.b64encode(f"{self._key}:{self._secret}".encode()).decode("ascii")
        request = urllib.request.Request(  # noqa: S310  (the URL is http(s), checked above)
            f"{self._api}/auth.login",
            data=b"{}",
            method="POST",
            headers={"Authorization": f"Basic {pair}", "Content-Type": "application/json"},
        )
        context = self._ssl_context() if self._api.startswith("https://") else None
        try:
            with urllib.request.urlopen(request, timeout=self._timeout, context=context) as response:  # noqa: S310  (http(s) only)
                return str(json.load(response)["data"]["token"])
        except urllib.error.HTTPError as error:
            reason = _message(error)
            log.warning(
                "cannot sign in to %s for the file server's token: HTTP %d %s", self._api, error.code, reason
            )
        except (OSError, ValueError, KeyError, TypeError) as error:
            log.warning("cannot sign in to %s for the file server's token: %s", self._api, error)
        return None


def _message(error: urllib.error.HTTPError) -> str:
    try:
        return str(json.load(error)["meta"]["result_msg"])
    except (ValueError, KeyError, TypeError, OSError):
        return str(error.reason)


__all__ = ["FileServerAuth"]
