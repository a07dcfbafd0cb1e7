"""The web page: queues, workers and tasks, a task's record and live log, enqueue / abort / re-queue.

One static page (``server/static``) over the API, which this role serves too under ``/api/`` (as
ClearML's web server proxies it), so the page and its calls share one origin and the session
cookie ``auth.login`` sets.
"""

from __future__ import annotations

import mimetypes
from importlib import resources

from clearml_core.server.api import ApiApplication
from clearml_core.server.context import ServerContext
from clearml_core.server.httpd import HttpRequest, HttpResponse

API_PREFIX = "/api"


class WebApplication:
    """The web role: the page, its assets, and the API under ``/api/``."""

    name = "web server"

    def __init__(self, ctx: ServerContext) -> None:
        self.ctx = ctx
        self.api = ApiApplication(ctx, prefix=API_PREFIX)
        self.static = resources.files("clearml_core.server") / "static"

    def handle(self, request: HttpRequest) -> HttpResponse:
        path = request.path
        if path.startswith(API_PREFIX + "/"):
            return self.api.handle(request)
        if request.method not in ("GET", "HEAD"):
            return HttpResponse(405, b"", [("Allow", "GET, HEAD")])
        name = "index.html" if path in ("", "/") else path.lstrip("/")
        if "/" in name or name.startswith("."):
            return HttpResponse(404, b"not found\n", [("Content-Type", "text/plain")])
        asset = self.static / name
        if not asset.is_file():
            return HttpResponse(404, b"not found\n", [("Content-Type", "text/plain")])
        kind = mimetypes.guess_type(name)[0] or "application/octet-stream"
        if kind.startswith("text/") or kind in ("application/javascript", "text/javascript"):
            kind += "; charset=utf-8"
        headers = [
            ("Content-Type", kind),
            ("Cache-Control", "no-cache"),
            ("X-Content-Type-Options", "nosniff"),
            ("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'"),
            ("X-Frame-Options", "DENY"),
        ]
        return HttpResponse(200, asset.read_bytes(), headers)


__all__ = ["API_PREFIX", "WebApplication"]
