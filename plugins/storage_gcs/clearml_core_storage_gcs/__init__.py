"""Google Cloud Storage for clearml-core: the ``gs`` backend and its credential resolvers.

This module is what the ``storage_gcs`` entry point names, so it stays cheap: it only describes
what the plugin offers. google-cloud-storage and google-auth are imported by
:mod:`clearml_core_storage_gcs.driver` and :mod:`clearml_core_storage_gcs.resolvers` when a
``gs://`` URL is first used.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from clearml_core.hookspecs import hookimpl
from clearml_core.specs import CredentialResolverSpec, StorageBackendSpec

__version__ = "0.1.0"

INSTALL_HINT = "pip install 'clearml-core[gs]'"
SCHEMES = ("gs", "gcs")


@hookimpl
def clearml_storage_backends() -> Iterable[StorageBackendSpec]:
    return [
        StorageBackendSpec(
            name="gs",
            schemes=SCHEMES,
            factory="clearml_core_storage_gcs.driver:GCSDriver",
            install_hint=INSTALL_HINT,
            description="Google Cloud Storage (and STORAGE_EMULATOR_HOST emulators) through google-cloud-storage",
        )
    ]


@hookimpl
def clearml_credential_resolvers() -> Iterable[CredentialResolverSpec]:
    return [
        CredentialResolverSpec(
            name="gs-emulator",
            schemes=SCHEMES,
            order=50,
            factory="clearml_core_storage_gcs.resolvers:EmulatorResolver",
            description="STORAGE_EMULATOR_HOST: an emulator takes anonymous requests only",
        ),
        CredentialResolverSpec(
            name="gs-config",
            schemes=SCHEMES,
            order=100,
            factory="clearml_core_storage_gcs.resolvers:ConfigResolver",
            description="clearml.conf sdk.google.storage (credentials entries by bucket/subdir, then "
            "the section's credentials_json)",
        ),
        CredentialResolverSpec(
            name="gs-env",
            schemes=SCHEMES,
            order=200,
            factory="clearml_core_storage_gcs.resolvers:EnvironmentResolver",
            description="GOOGLE_APPLICATION_CREDENTIALS (a service-account or authorized-user JSON file)",
        ),
        CredentialResolverSpec(
            name="gs-adc",
            schemes=SCHEMES,
            order=300,
            factory="clearml_core_storage_gcs.resolvers:DefaultCredentialsResolver",
            description="application default credentials (gcloud auth application-default login, "
            "workload identity, the GCE metadata server)",
        ),
        CredentialResolverSpec(
            name="gs-anonymous",
            schemes=SCHEMES,
            order=900,
            factory="clearml_core_storage_gcs.resolvers:AnonymousResolver",
            description="no credentials, for public buckets (sdk.google.storage.anonymous: false turns it off)",
        ),
    ]


@hookimpl
def clearml_config_defaults() -> Iterable[Path]:
    return [Path(__file__).with_name("defaults.conf")]
