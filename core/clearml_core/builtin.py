"""The core's own implementations, registered through the same hooks as any plugin."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from clearml_core.hookspecs import hookimpl
from clearml_core.specs import (
    ControlPlaneSpec,
    CredentialResolverSpec,
    ExecutionEnvSpec,
    StorageBackendSpec,
)

_DEFAULTS = Path(__file__).parent / "config" / "defaults"

URL_USERINFO_SCHEMES = ("ftp", "ftps", "ssh", "hdfs", "webhdfs")
"""The schemes whose URLs carry their user (and for FTP often the password) in the authority: the
chain of each asks :mod:`clearml_core.credentials.userinfo` first. ``sftp://`` is not one of them
(its plugin brings its own chain)."""


@hookimpl
def clearml_config_defaults() -> Iterable[Path]:
    return sorted(_DEFAULTS.glob("*.conf"))


@hookimpl
def clearml_execution_environments() -> Iterable[ExecutionEnvSpec]:
    return [
        ExecutionEnvSpec(
            name="venv",
            factory="clearml_core.runners.local:LocalProcessEnvironment",
            description="the task runs as a local process (its own process group, dies with the agent)",
        )
    ]


@hookimpl
def clearml_storage_backends() -> Iterable[StorageBackendSpec]:
    return [
        StorageBackendSpec(
            name="file",
            schemes=("file",),
            factory="clearml_core.storage.drivers.local:LocalDriver",
            description="local and network-mounted files (atomic writes)",
        ),
        StorageBackendSpec(
            name="http",
            schemes=("http", "https"),
            factory="clearml_core.storage.drivers.http:HttpDriver",
            description="HTTP(S) servers and the ClearML file server",
        ),
    ]


@hookimpl
def clearml_control_planes() -> Iterable[ControlPlaneSpec]:
    return [
        ControlPlaneSpec(
            name="sqlite",
            schemes=("sqlite",),
            factory="clearml_core.controlplane.sqlite:SQLiteControlPlane.from_url",
            description="embedded store in one SQLite file (WAL, atomic dequeue); the default",
        )
    ]


@hookimpl
def clearml_credential_resolvers() -> Iterable[CredentialResolverSpec]:
    return [
        CredentialResolverSpec(
            name="url-userinfo",
            schemes=URL_USERINFO_SCHEMES,
            order=50,
            factory="clearml_core.credentials.userinfo:UrlUserInfoResolver",
            description="user[:password]@ written in the URL itself (ftp, hdfs)",
        )
    ]
