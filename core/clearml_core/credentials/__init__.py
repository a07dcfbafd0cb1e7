"""Credentials: the resolver protocol, the per-scheme chain and matching helpers.

DESIGN §4: for a URL, the chain of its scheme is asked in order and the first answer wins;
``clearml-core storage resolve URL`` shows which resolver answered and why. Backend plugins add
their resolvers (config file entries, environment, the SDK's default chain) through the
``clearml_credential_resolvers`` hook; :mod:`clearml_core.credentials.resolvers` has the base
classes they are written with (a miss explained from what ``resolve`` saw, the clearml.conf
entries-then-section resolver) and :mod:`clearml_core.credentials.matching` the entry matching.
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
from clearml_core.credentials.resolvers import (
    ConfigEntry,
    ConfigEntryResolver,
    ConfigLookup,
    ExplainingResolver,
    Misses,
)

__all__ = [
    "Attempt",
    "ConfigEntry",
    "ConfigEntryResolver",
    "ConfigLookup",
    "CredentialChain",
    "CredentialResolver",
    "CredentialResolverError",
    "Credentials",
    "ExplainingResolver",
    "Misses",
    "Resolution",
    "chain_for",
    "explain",
    "reset_chains",
    "resolve",
]
