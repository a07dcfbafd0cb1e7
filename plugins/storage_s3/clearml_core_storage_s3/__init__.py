"""S3 and S3-compatible storage for clearml-core: the ``s3`` backend and its credential resolvers.

This module is what the ``storage_s3`` entry point names, so it stays cheap: it only describes
what the plugin offers. boto3 is imported by :mod:`clearml_core_storage_s3.driver` and
:mod:`clearml_core_storage_s3.resolvers` when an ``s3://`` URL is first used.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from clearml_core.hookspecs import hookimpl
from clearml_core.specs import CredentialResolverSpec, StorageBackendSpec

__version__ = "0.1.0"

INSTALL_HINT = "pip install 'clearml-core[s3]'"


@hookimpl
def clearml_storage_backends() -> Iterable[StorageBackendSpec]:
    return [
        StorageBackendSpec(
            name="s3",
            schemes=("s3",),
            factory="clearml_core_storage_s3.driver:S3Driver",
            install_hint=INSTALL_HINT,
            description="Amazon S3 and S3-compatible stores (MinIO, Ceph, R2, …) through boto3",
        )
    ]


@hookimpl
def clearml_credential_resolvers() -> Iterable[CredentialResolverSpec]:
    return [
        CredentialResolverSpec(
            name="s3-config",
            schemes=("s3",),
            order=100,
            factory="clearml_core_storage_s3.resolvers:ConfigResolver",
            description="clearml.conf sdk.aws.s3 (credentials entries, then the section's defaults)",
        ),
        CredentialResolverSpec(
            name="s3-env",
            schemes=("s3",),
            order=200,
            factory="clearml_core_storage_s3.resolvers:EnvironmentResolver",
            description="AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_PROFILE and MLflow's MLFLOW_S3_*",
        ),
        CredentialResolverSpec(
            name="s3-boto-chain",
            schemes=("s3",),
            order=300,
            factory="clearml_core_storage_s3.resolvers:BotoChainResolver",
            description="boto3's default chain: ~/.aws files, web identity (OIDC), container and instance roles",
        ),
    ]


@hookimpl
def clearml_config_defaults() -> Iterable[Path]:
    return [Path(__file__).with_name("defaults.conf")]
