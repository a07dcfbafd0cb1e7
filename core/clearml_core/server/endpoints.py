"""The endpoint registry and what a call carries: services register with :func:`endpoint` and get
a :class:`Call`; :mod:`clearml_core.server.api` dispatches HTTP requests to them."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from clearml_core.server.errors import api_error

if TYPE_CHECKING:
    from clearml_core.server.context import ServerContext
    from clearml_core.server.identity import Identity

Version = tuple[int, int]
_VERSION = re.compile(r"^(\d+)(?:\.(\d+))?$")


def parse_version(text: str) -> Version:
    match = _VERSION.match(text)
    if match is None:
        raise ValueError(text)
    return int(match.group(1)), int(match.group(2) or 0)


def show_version(version: Version) -> str:
    return f"{version[0]}.{version[1]}"


# -- endpoints ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    name: str
    handler: Callable[[Call], Any]
    min_version: Version
    authorize: bool


_ENDPOINTS: dict[str, list[Endpoint]] = {}


def endpoint(
    name: str, *, min_version: str = "2.1", authorize: bool = True
) -> Callable[[Callable[[Call], Any]], Callable[[Call], Any]]:
    """Register the decorated function as ``name`` (``service.action``) from ``min_version`` on.

    It gets the :class:`Call` and returns the ``data`` of the answer (a dict, or None for ``{}``).
    """

    def register(handler: Callable[[Call], Any]) -> Callable[[Call], Any]:
        versions = _ENDPOINTS.setdefault(name, [])
        found = Endpoint(name, handler, parse_version(min_version), authorize)
        if any(existing.min_version == found.min_version for existing in versions):
            raise ValueError(f"endpoint {name} {min_version} is registered twice")
        versions.append(found)
        versions.sort(key=lambda item: item.min_version, reverse=True)
        return handler

    return register


def endpoint_names() -> list[str]:
    """Every registered endpoint name (the services register theirs when imported)."""
    return sorted(_ENDPOINTS)


def resolve(name: str, version: Version) -> Endpoint | None:
    """The newest endpoint ``name`` whose minimum version is not above ``version``."""
    return next((found for found in _ENDPOINTS.get(name, ()) if found.min_version <= version), None)


# -- calls ----------------------------------------------------------------------------------------


@dataclass
class Call:
    """One API call: what was asked, by whom, and what the answer sets besides its data."""

    ctx: ServerContext
    name: str
    version: Version
    data: dict[str, Any]
    headers: Mapping[str, str]
    address: str
    batch: list[dict[str, Any]] | None = None
    identity: Identity | None = None
    set_cookies: list[str] = field(default_factory=list)

    @property
    def worker(self) -> str:
        """The worker the client names (``X-ClearML-Worker``), empty when it names none."""
        return self.headers.get("x-clearml-worker") or self.headers.get("x-trains-worker") or ""

    @property
    def user(self) -> Identity:
        if self.identity is None:
            raise api_error("no_credentials")
        return self.identity

    def require(self, *keys: str) -> None:
        missing = [key for key in keys if self.data.get(key) in (None, "")]
        if missing:
            raise api_error("missing_required_fields", fields=missing)

    def get_str(self, key: str, default: str = "") -> str:
        value = self.data.get(key, default)
        if value is None:
            return default
        if not isinstance(value, str):
            raise api_error("fields_type_error", f"{key} must be a string", field=key)
        return value

    def get_list(self, key: str) -> list[Any]:
        value = self.data.get(key)
        if value is None:
            return []
        if isinstance(value, str):
            return [value]
        if not isinstance(value, list):
            raise api_error("fields_type_error", f"{key} must be a list", field=key)
        return value


__all__ = [
    "Call",
    "Endpoint",
    "Version",
    "endpoint",
    "endpoint_names",
    "parse_version",
    "resolve",
    "show_version",
]
