"""Azure Blob Storage for clearml-core: the ``azure`` backend and its credential resolvers.

This module is what the ``storage_azure`` entry point names, so it stays cheap: it only describes
what the plugin offers. azure-storage-blob is imported by :mod:`clearml_core_storage_azure.driver`
when an Azure URL is first used; azure-identity (optional) only when DefaultAzureCredential is.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from clearml_core.hookspecs import hookimpl
from clearml_core.specs import CredentialResolverSpec, StorageBackendSpec

__version__ = "0.1.0"

INSTALL_HINT = "pip install 'clearml-core[azure]'"
SCHEMES = ("azure", "wasbs", "wasb", "abfs", "abfss")


@hookimpl
def clearml_storage_backends() -> Iterable[StorageBackendSpec]:
    return [
        StorageBackendSpec(
            name="azure",
            schemes=SCHEMES,
            factory="clearml_core_storage_azure.driver:AzureBlobDriver",
            install_hint=INSTALL_HINT,
            description="Azure Blob Storage (and Azurite, sovereign clouds, ADLS Gen2) through azure-storage-blob",
        )
    ]


@hookimpl
def clearml_credential_resolvers() -> Iterable[CredentialResolverSpec]:
    return [
        CredentialResolverSpec(
            name="azure-config",
            schemes=SCHEMES,
            order=100,
            factory="clearml_core_storage_azure.resolvers:ConfigResolver",
            description="clearml.conf sdk.azure.storage.containers (the most specific account + container entry)",
        ),
        CredentialResolverSpec(
            name="azure-env",
            schemes=SCHEMES,
            order=200,
            factory="clearml_core_storage_azure.resolvers:EnvironmentResolver",
            description="AZURE_STORAGE_CONNECTION_STRING, AZURE_STORAGE_ACCOUNT + AZURE_STORAGE_KEY, "
            "AZURE_STORAGE_ACCESS_KEY, AZURE_STORAGE_SAS_TOKEN",
        ),
        CredentialResolverSpec(
            name="azure-default-credential",
            schemes=SCHEMES,
            order=300,
            factory="clearml_core_storage_azure.resolvers:DefaultCredentialResolver",
            description="azure-identity's DefaultAzureCredential (environment, workload and managed "
            "identity, Azure CLI), when azure-identity is installed",
        ),
    ]


@hookimpl
def clearml_config_defaults() -> Iterable[Path]:
    return [Path(__file__).with_name("defaults.conf")]
