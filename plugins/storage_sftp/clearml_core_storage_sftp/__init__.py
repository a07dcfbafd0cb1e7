"""SFTP storage for clearml-core: the ``sftp`` backend and its credential resolvers.

This module is what the ``storage_sftp`` entry point names, so it stays cheap: it only describes
what the plugin offers. paramiko is imported by :mod:`clearml_core_storage_sftp.driver` and the
resolvers when an ``sftp://`` URL is first used, never by ``clearml-core --help`` or
``plugins list``.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from clearml_core.hookspecs import hookimpl
from clearml_core.specs import CredentialResolverSpec, StorageBackendSpec

__version__ = "0.1.0"

INSTALL_HINT = "pip install 'clearml-core[sftp]'"


@hookimpl
def clearml_storage_backends() -> Iterable[StorageBackendSpec]:
    return [
        StorageBackendSpec(
            name="sftp",
            schemes=("sftp",),
            factory="clearml_core_storage_sftp.driver:SFTPDriver",
            install_hint=INSTALL_HINT,
            description="SSH file servers through paramiko (known_hosts checked, pooled connections)",
        )
    ]


@hookimpl
def clearml_credential_resolvers() -> Iterable[CredentialResolverSpec]:
    return [
        CredentialResolverSpec(
            name="sftp-config",
            schemes=("sftp",),
            order=100,
            factory="clearml_core_storage_sftp.resolvers:ConfigResolver",
            description="clearml.conf sdk.sftp (the credentials entry of the host[:port], then the section)",
        ),
        CredentialResolverSpec(
            name="sftp-url",
            schemes=("sftp",),
            order=200,
            factory="clearml_core_storage_sftp.resolvers:UrlPasswordResolver",
            description="a password written in the URL (sftp://user:password@host/…; warns)",
        ),
        CredentialResolverSpec(
            name="sftp-ssh",
            schemes=("sftp",),
            order=300,
            factory="clearml_core_storage_sftp.resolvers:SshResolver",
            description="what ssh itself uses: ~/.ssh/config IdentityFile, the ssh agent, ~/.ssh/id_*",
        ),
    ]


@hookimpl
def clearml_config_defaults() -> Iterable[Path]:
    return [Path(__file__).with_name("defaults.conf")]
