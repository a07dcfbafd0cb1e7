"""What plugins register: small frozen descriptions that name their implementation lazily.

A registration hook returns these instead of doing work, so the plugin manager can list what is
installed, detect two plugins claiming one name and print install hints without importing any
cloud SDK. ``factory`` is a ``"package.module:attribute"`` reference, imported by :meth:`load`
only when the implementation is first used.
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass
from typing import Any

_REFERENCE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")
_NAME = re.compile(r"^[a-z][a-z0-9_+.-]*$")


def load_reference(reference: str) -> Any:
    """Import ``"package.module:attr.sub"`` and return the attribute."""
    module_name, _, attr_path = reference.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in attr_path.split("."):
        obj = getattr(obj, part)
    return obj


def _check_name(kind: str, value: str) -> None:
    if not _NAME.match(value):
        raise ValueError(f"{kind} {value!r} must be lower-case letters, digits and _ + . -")


@dataclass(frozen=True)
class _Spec:
    name: str
    factory: str
    description: str = ""

    kind = "implementation"

    def __post_init__(self) -> None:
        _check_name(f"{self.kind} name", self.name)
        if not _REFERENCE.match(self.factory):
            raise ValueError(f"{self.kind} {self.name!r}: factory must look like 'package.module:attr'")

    def load(self) -> Any:
        """Import and return the implementation this spec names."""
        return load_reference(self.factory)

    def claims(self) -> list[tuple[str, str]]:
        """Names this spec takes; two plugins may not take the same one."""
        return [(self.kind, self.name)]


@dataclass(frozen=True)
class _SchemeSpec(_Spec):
    schemes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "schemes", tuple(s.lower() for s in self.schemes))
        for scheme in self.schemes:
            _check_name(f"{self.kind} {self.name!r} URL scheme", scheme)


@dataclass(frozen=True)
class StorageBackendSpec(_SchemeSpec):
    """A storage backend: the URL schemes it serves and its driver class.

    ``install_hint`` is shown when the driver's own dependencies fail to import.
    """

    install_hint: str = ""
    kind = "storage backend"

    def claims(self) -> list[tuple[str, str]]:
        return [*super().claims(), *(("URL scheme", s) for s in self.schemes)]


@dataclass(frozen=True)
class CredentialResolverSpec(_SchemeSpec):
    """A credential resolver for some URL schemes; lower ``order`` is asked first.

    The core's ordering: configuration file entries at 100, environment variables at 200, the cloud
    SDK's own default chain at 300. A vault or OIDC resolver picks a number in between.
    """

    order: int = 250
    kind = "credential resolver"


@dataclass(frozen=True)
class PackageManagerSpec(_Spec):
    """A Python environment manager (pip, uv, conda, poetry).

    ``detect_files`` are repository files whose presence suggests this manager (``poetry.lock``),
    checked without importing the implementation.
    """

    detect_files: tuple[str, ...] = ()
    kind = "package manager"


@dataclass(frozen=True)
class ExecutionEnvSpec(_Spec):
    """Where a task's process runs: ``venv`` (a local process), ``docker``, …"""

    kind = "execution environment"


@dataclass(frozen=True)
class ControlPlaneSpec(_SchemeSpec):
    """A task / queue / worker store, selected by the scheme of ``agent.control_plane``."""

    kind = "control plane"

    def claims(self) -> list[tuple[str, str]]:
        return [*super().claims(), *((f"{self.kind} URL scheme", s) for s in self.schemes)]


SPEC_TYPES: dict[str, type[_Spec]] = {
    "clearml_storage_backends": StorageBackendSpec,
    "clearml_credential_resolvers": CredentialResolverSpec,
    "clearml_package_managers": PackageManagerSpec,
    "clearml_execution_environments": ExecutionEnvSpec,
    "clearml_control_planes": ControlPlaneSpec,
}

__all__ = [
    "ControlPlaneSpec",
    "CredentialResolverSpec",
    "ExecutionEnvSpec",
    "PackageManagerSpec",
    "StorageBackendSpec",
    "load_reference",
]
