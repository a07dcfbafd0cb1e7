"""Every hook a clearml-core plugin can implement.

A plugin is a module (or object) named by an entry point in the group ``clearml_core.plugins``.
It implements some of the hooks below with the :data:`hookimpl` marker; the hooks only *describe*
what the plugin offers (frozen specs from :mod:`clearml_core.specs`) and name the implementation
as ``"module:attr"``, so nothing heavy is imported until it is used. The core's own file, HTTP,
SQLite and local-process implementations register through these same hooks.

None of the hooks is ``firstresult``: every plugin's answer is collected, and two plugins claiming
one name make that name unusable, with an error naming both distributions. See docs/plugins.md
for a walkthrough.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pluggy

PROJECT_NAME = "clearml_core"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)
"""The one marker a plugin imports: decorate each hook implementation with it."""

from clearml_core.specs import (  # noqa: E402  (the markers above are what plugins import first)
    ControlPlaneSpec,
    CredentialResolverSpec,
    ExecutionEnvSpec,
    PackageManagerSpec,
    StorageBackendSpec,
)


@hookspec
def clearml_storage_backends() -> Iterable[StorageBackendSpec]:
    """Storage backends this plugin provides.

    Called once per process, the first time a URL is opened or ``plugins list`` runs. Return the
    backends with the URL schemes each serves; the driver class is imported only when a URL of
    one of those schemes is used. A scheme no backend claims falls back to fsspec.

    Example::

        from clearml_core import hookimpl, StorageBackendSpec

        @hookimpl
        def clearml_storage_backends():
            return [StorageBackendSpec(
                name="memo", schemes=("memo",),
                factory="memo_plugin.driver:MemoDriver",
                install_hint="pip install memo-plugin",
            )]
    """


@hookspec
def clearml_credential_resolvers() -> Iterable[CredentialResolverSpec]:
    """Credential resolvers this plugin adds to the chains of some URL schemes.

    Called once per process when credentials for a URL are first needed, and by
    ``storage resolve``. Each resolver joins the chain of its schemes at its ``order``: config
    file entries answer at 100, environment variables at 200, the SDK default chain at 300; the
    first resolver that answers wins.

    Example::

        from clearml_core import hookimpl, CredentialResolverSpec

        @hookimpl
        def clearml_credential_resolvers():
            return [CredentialResolverSpec(
                name="vault", schemes=("s3",), order=150,
                factory="vault_plugin.resolver:VaultResolver",
            )]
    """


@hookspec
def clearml_package_managers() -> Iterable[PackageManagerSpec]:
    """Python environment managers this plugin provides (pip, uv, conda, poetry, …).

    Called when the agent prepares a task's environment and by ``plugins list``. The agent picks
    the manager named by ``agent.package_manager.type``; ``detect_files`` lets it notice a
    repository that asks for another one.

    Example::

        from clearml_core import hookimpl, PackageManagerSpec

        @hookimpl
        def clearml_package_managers():
            return [PackageManagerSpec(
                name="pixi", factory="pixi_plugin.manager:PixiManager",
                detect_files=("pixi.toml",),
            )]
    """


@hookspec
def clearml_execution_environments() -> Iterable[ExecutionEnvSpec]:
    """Places a task's process can run in (``venv`` is built in; ``docker`` is a plugin).

    Called when the agent starts a task and by ``plugins list``. The agent picks ``docker`` when
    the task or the daemon names an image, else ``venv``.

    Example::

        from clearml_core import hookimpl, ExecutionEnvSpec

        @hookimpl
        def clearml_execution_environments():
            return [ExecutionEnvSpec(name="podman", factory="podman_plugin.runner:PodmanRunner")]
    """


@hookspec
def clearml_control_planes() -> Iterable[ControlPlaneSpec]:
    """Task / queue / worker stores, chosen by the URL scheme of ``agent.control_plane``.

    Called when a command first talks to the control plane. ``sqlite`` is built in, ``redis`` is a
    plugin.

    Example::

        from clearml_core import hookimpl, ControlPlaneSpec

        @hookimpl
        def clearml_control_planes():
            return [ControlPlaneSpec(
                name="postgres", schemes=("postgresql",),
                factory="pg_plugin.store:PostgresControlPlane",
            )]
    """


@hookspec
def clearml_config_defaults() -> Iterable[Path]:
    """HOCON files holding this plugin's default settings.

    Called once when configuration is loaded, before the user's ``clearml.conf``. The files are
    merged over the core's defaults in plugin order; they define which keys ``config validate``
    knows and the type each value must have.

    Example::

        from pathlib import Path
        from clearml_core import hookimpl

        @hookimpl
        def clearml_config_defaults():
            return [Path(__file__).with_name("defaults.conf")]
    """


__all__ = [
    "ControlPlaneSpec",
    "CredentialResolverSpec",
    "ExecutionEnvSpec",
    "PackageManagerSpec",
    "StorageBackendSpec",
    "hookimpl",
    "hookspec",
]
