from __future__ import annotations

import json
from types import ModuleType

import pytest

from clearml_core import CredentialResolverSpec, hookimpl
from clearml_core.config import load_config
from clearml_core.config.redact import redactor
from clearml_core.credentials import Credentials, chain_for, explain, resolve
from clearml_core.errors import PluginError
from clearml_core.plugins import PluginRegistry
from clearml_core.storage.url import parse_url


class _Fixed:
    """A resolver that answers for one bucket only."""

    def __init__(self, bucket: str, source: str) -> None:
        self.bucket = bucket
        self.source = source

    def resolve(self, url, config):
        if url.bucket != self.bucket:
            return None
        return Credentials({"key": "AKIAEXAMPLEKEY1234", "secret": "s3cr3t-value"}, self.source)


class VaultResolver(_Fixed):
    def __init__(self) -> None:
        super().__init__("vaulted", "vault kv/data/s3")


class ConfigResolver(_Fixed):
    def __init__(self) -> None:
        super().__init__("configured", "~/clearml.conf: sdk.aws.s3.credentials[0]")

    def describe_miss(self, url):
        return f"no credentials entry matches bucket {url.bucket}"


class EnvResolver:
    def resolve(self, url, config):
        return Credentials({"key": "AKIAENVIRONMENT99"}, "env AWS_ACCESS_KEY_ID")


def _plugin(*specs: CredentialResolverSpec) -> ModuleType:
    module = ModuleType("fake_resolvers")

    @hookimpl
    def clearml_credential_resolvers():
        return list(specs)

    module.clearml_credential_resolvers = clearml_credential_resolvers  # type: ignore[attr-defined]
    return module


def _registry() -> PluginRegistry:
    registry = PluginRegistry(discover=False)
    here = __name__
    registry.register(
        _plugin(
            CredentialResolverSpec(name="env", schemes=("s3",), order=200, factory=f"{here}:EnvResolver"),
            CredentialResolverSpec(name="conf", schemes=("s3",), order=100, factory=f"{here}:ConfigResolver"),
            CredentialResolverSpec(name="vault", schemes=("s3",), order=150, factory=f"{here}:VaultResolver"),
        ),
        "fake",
    )
    return registry


def test_chain_is_ordered_by_declared_order():
    assert chain_for("s3", _registry()).names == ["conf", "vault", "env"]


def test_first_answer_wins_and_explanation_lists_who_was_asked():
    registry = _registry()
    config = load_config(defaults=[])
    resolution = explain(parse_url("s3://vaulted/model.pt"), config, registry)
    assert resolution.resolver == "vault"
    assert resolution.source == "vault kv/data/s3"
    assert [(a.resolver, a.answered) for a in resolution.attempts] == [("conf", False), ("vault", True)]
    assert resolution.attempts[0].note == "no credentials entry matches bucket vaulted"

    fallback = explain("s3://elsewhere/x", config, registry)
    assert fallback.resolver == "env"
    assert [a.resolver for a in fallback.attempts] == ["conf", "vault", "env"]


def test_resolution_json_masks_secrets_and_key_ids():
    resolution = explain("s3://configured/x", load_config(defaults=[]), _registry())
    data = resolution.to_json()
    text = json.dumps(data)
    assert "s3cr3t-value" not in text
    assert "AKIAEXAMPLEKEY1234" not in text
    assert data["key_id"] == "****1234"
    assert data["values"]["secret"] == "****"
    # once seen, the secret is scrubbed from anything printed later
    assert "s3cr3t-value" not in redactor("oops: s3cr3t-value")


def test_no_resolver_answers():
    registry = PluginRegistry(discover=False)
    resolution = explain("s3://bucket/x", load_config(defaults=[]), registry)
    assert resolution.credentials is None
    assert resolution.to_json()["resolver"] is None


def test_resolver_without_resolve_method_is_a_plugin_error():
    registry = PluginRegistry(discover=False)
    registry.register(
        _plugin(CredentialResolverSpec(name="broken", schemes=("s3",), factory="builtins:len")), "broken"
    )
    with pytest.raises(PluginError, match="broken"):
        chain_for("s3", registry)


def test_url_userinfo_resolver_is_built_in():
    config = load_config(defaults=[])
    registry = PluginRegistry(discover=False)
    creds = resolve("ftp://alice:pa%40ss@127.0.0.1:2121/data/x.bin", config, registry)
    assert creds is not None
    assert creds.resolver == "url-userinfo"
    assert creds["username"] == "alice"
    assert creds["password"] == "pa@ss"
    assert "pa@ss" not in creds.source
    assert "pa@ss" not in repr(creds)
    assert resolve("ftp://127.0.0.1/data/x.bin", config, registry) is None
