"""clearml-core: ClearML-compatible storage, credentials and agent, as a small core plus plugins.

Importing this package stays cheap: the storage manager and everything behind it load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from clearml_core.hookspecs import hookimpl
    from clearml_core.specs import (
        ControlPlaneSpec,
        CredentialResolverSpec,
        ExecutionEnvSpec,
        PackageManagerSpec,
        StorageBackendSpec,
    )
    from clearml_core.storage.manager import StorageManager

# Every module under clearml_core imports this package first, so what it imports every command
# pays, `--help` included: the hook marker (pluggy) and the specs load on first use.
_LAZY = {
    "hookimpl": "clearml_core.hookspecs",
    "ControlPlaneSpec": "clearml_core.specs",
    "CredentialResolverSpec": "clearml_core.specs",
    "ExecutionEnvSpec": "clearml_core.specs",
    "PackageManagerSpec": "clearml_core.specs",
    "StorageBackendSpec": "clearml_core.specs",
    "StorageManager": "clearml_core.storage.manager",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'clearml_core' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


__all__ = [
    "ControlPlaneSpec",
    "CredentialResolverSpec",
    "ExecutionEnvSpec",
    "PackageManagerSpec",
    "StorageBackendSpec",
    "StorageManager",
    "__version__",
    "hookimpl",
]
