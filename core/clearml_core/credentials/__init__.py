"""Credentials: the resolver protocol, the per-scheme chain and matching helpers.

DESIGN §4: for a URL, the chain of its scheme is asked in order and the first answer wins;
``clearml-core storage resolve URL`` shows which resolver answered and why. Backend plugins add
their resolvers (config file entries, environment, the SDK's default chain) through the
``clearml_credential_resolvers`` hook and reuse :mod:`clearml_core.credentials.matching`.
"""

from __future__ import annotations

from clearml_core.credentials.chain import (
    Attempt,
    CredentialChain,
    CredentialResolver,
    CredentialResolverError,
    Credentials,
    Resolution,
    chain_for,
    explain,
    reset_chains,
    resolve,
)

__all__ = [
    "Attempt",
    "CredentialChain",
    "CredentialResolver",
    "CredentialResolverError",
    "Credentials",
    "Resolution",
    "chain_for",
    "explain",
    "reset_chains",
    "resolve",
]
