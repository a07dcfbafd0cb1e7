"""The ClearML server's addresses, worked out from clearml.conf the way ClearML does.

``api.files_server`` (``CLEARML_FILES_HOST``) wins; without it the file server is derived from the
web server (``api.web_server``, ``CLEARML_WEB_HOST``), itself derived from the API server when not
set: ``app.`` becomes ``files.``, a port becomes 8081. With no server configured at all these are
ClearML's hosted addresses.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlparse, urlunparse

if TYPE_CHECKING:
    from clearml_core.config import Config

DEFAULT_API = "https://api.clear.ml"
DEFAULT_WEB = "https://app.clear.ml"
DEFAULT_FILES = "https://files.clear.ml"


def _setting(config: Config, *keys: str) -> str:
    for key in keys:
        value = (config.get_str(key) or "").strip().rstrip("/")
        if value:
            return value
    return ""


def api_server(config: Config) -> str:
    return _setting(config, "api.api_server", "api.host") or DEFAULT_API


def web_server(config: Config) -> str:
    """``api.web_server``, else derived from the API server (``api.`` → ``app.``, port 8008 → 8080)."""
    web = _setting(config, "api.web_server")
    if web:
        return web
    host = api_server(config)
    if host == DEFAULT_API:
        return DEFAULT_WEB
    for api, app in (("://demoapi.", "://demoapp."), ("://api.", "://app.")):
        if api in host:
            return host.replace(api, app, 1)
    if urlparse(host).port == 8008:
        return host.replace(":8008", ":8080", 1)
    from clearml_core.errors import ConfigError

    raise ConfigError(
        f"cannot tell the ClearML web server from the API server {host}; set api.web_server "
        "(or api.files_server) in clearml.conf"
    )


def files_server(config: Config) -> str:
    """``api.files_server``, else derived from the web server as ClearML does."""
    files = _setting(config, "api.files_server")
    if files:
        return files
    if api_server(config) == DEFAULT_API:
        return DEFAULT_FILES
    parsed = urlparse(web_server(config))
    if parsed.port:
        netloc = parsed.netloc.replace(f":{parsed.port}", ":8081", 1)
    elif parsed.netloc.startswith("demoapp."):
        netloc = parsed.netloc.replace("demoapp.", "demofiles.", 1)
    elif parsed.netloc.startswith("app."):
        netloc = parsed.netloc.replace("app.", "files.", 1)
    else:
        netloc = parsed.netloc + ":8081"
    return urlunparse(parsed._replace(netloc=netloc))


__all__ = ["api_server", "files_server", "web_server"]
