from __future__ import annotations

import json
from types import ModuleType

import pytest

from clearml_core import CredentialResolverSpec, hookimpl
from clearml_core.config import Config
from clearml_core.config.redact import redactor
from clearml_core.credentials import CredentialResolverError, Credentials, chain_for, explain, resolve
from clearml_core.errors import PluginError, UserError
from clearml_core.plugins import PluginRegistry
from clearml_core.settings import load_config
from clearml_core.storage.url import parse_url
from tests import plugin_dists
from tests.helpers import run_cli
from tests.plugin_dists import PluginDist


class _Fixed:
    """A resolver that answers for one bucket only."""

    def __init__(self, bucket: str, source: str) -> None:
        self.bucket = bucket
        self.source = source

    def resolve(self, url, config):
        if url.bucket != self.bucket:
            return None
        return Credentials({"key": "AKIAEXAMPLEKEY1234", "secret": "s3cr3t-value"}, self.source)

    def describe_miss(self, url, config):
        return ""


class VaultResolver(_Fixed):
    def __init__(self) -> None:
        super().__init__("vaulted", "vault kv/data/s3")


class ConfigResolver(_Fixed):
    def __init__(self) -> None:
        super().__init__("configured", "~/clearml.conf: sdk.aws.s3.credentials[0]")

    def describe_miss(self, url, config):
        section = config.get_str("fake.section", "sdk.fake")
        return f"no {section} entry matches bucket {url.bucket}"


class EnvResolver:
    asked = 0

    def resolve(self, url, config):
        EnvResolver.asked += 1
        return Credentials({"key": "AKIAENVIRONMENT99"}, "env AWS_ACCESS_KEY_ID")

    def describe_miss(self, url, config):
        return ""


class CrashingResolver:
    """A third party's resolver with a bug."""

    def resolve(self, url, config):
        return {}["vault-token"]

    def describe_miss(self, url, config):
        return ""


class WrongAnswerResolver:
    def resolve(self, url, config):
        return {"key": "not wrapped in Credentials"}

    def describe_miss(self, url, config):
        return ""


class ConfiguredWrongly:
    """Raises a UserError: something the user must fix, shown in the resolver's own words."""

    def resolve(self, url, config):
        from clearml_core.errors import ConfigError

        raise ConfigError("sdk.fake.credentials[0]: key_file does not exist")

    def describe_miss(self, url, config):
        return ""


class CrashingExplanation(_Fixed):
    def __init__(self) -> None:
        super().__init__("nowhere", "n/a")

    def describe_miss(self, url, config):
        raise RuntimeError("explaining is hard")


class OldStyleResolver(_Fixed):
    """describe_miss without the config: the protocol before it was passed in."""

    def __init__(self) -> None:
        super().__init__("nowhere", "n/a")

    def describe_miss(self, url):  # type: ignore[override]
        return "old"


class NoExplanation:
    def resolve(self, url, config):
        return None


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
    assert resolution.attempts[0].note == "no sdk.fake entry matches bucket vaulted"

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


def test_describe_miss_gets_the_config():
    config = Config({"fake": {"section": "sdk.elsewhere"}}, {}, [])
    resolution = explain(parse_url("s3://vaulted/model.pt"), config, _registry())
    assert resolution.attempts[0].note == "no sdk.elsewhere entry matches bucket vaulted"


def _one_plugin(*specs: CredentialResolverSpec, name: str = "vault", dist: str = "clearml-test-vault"):
    registry = _registry()
    registry.register(_plugin(*specs), name, dist, "0.3.0")
    return registry


def _spec(name: str, factory: str, order: int = 150) -> CredentialResolverSpec:
    return CredentialResolverSpec(name=name, schemes=("s3",), order=order, factory=f"{__name__}:{factory}")


def test_a_resolver_that_crashes_is_named_with_its_distribution_and_the_url():
    registry = _one_plugin(_spec("kv", "CrashingResolver", order=120))
    EnvResolver.asked = 0

    with pytest.raises(CredentialResolverError) as raised:
        explain("s3://elsewhere/model.pt", load_config(defaults=[]), registry)
    message = str(raised.value)
    assert "credential resolver 'kv'" in message
    assert "clearml-test-vault 0.3.0 (plugin 'vault')" in message
    assert "on s3://elsewhere/model.pt:" in message
    assert "KeyError: 'vault-token'" in message
    assert isinstance(raised.value, UserError)  # one line and exit code 2 in the CLI
    assert EnvResolver.asked == 0, "the chain went on after a resolver crashed"


def test_a_resolver_answering_something_else_than_credentials_is_named():
    registry = _one_plugin(_spec("kv", "WrongAnswerResolver", order=120))
    with pytest.raises(CredentialResolverError, match=r"'kv' \(from clearml-test-vault 0.3.0.*returned dict"):
        resolve("s3://elsewhere/x", load_config(defaults=[]), registry)


def test_a_user_error_of_a_resolver_is_shown_as_it_is():
    registry = _one_plugin(_spec("kv", "ConfiguredWrongly", order=120))
    with pytest.raises(UserError) as raised:
        resolve("s3://elsewhere/x", load_config(defaults=[]), registry)
    assert not isinstance(raised.value, CredentialResolverError)
    assert str(raised.value) == "sdk.fake.credentials[0]: key_file does not exist"


def test_a_failing_explanation_is_said_and_resolution_goes_on():
    registry = _one_plugin(_spec("kv", "CrashingExplanation", order=120))
    resolution = explain("s3://elsewhere/x", load_config(defaults=[]), registry)
    assert resolution.resolver == "env"
    kv = next(a for a in resolution.attempts if a.resolver == "kv")
    assert kv.note == "(describe_miss failed: RuntimeError: explaining is hard)"


@pytest.mark.parametrize("factory", ["OldStyleResolver", "NoExplanation"])
def test_a_resolver_without_describe_miss_url_config_is_named(factory):
    registry = _one_plugin(_spec("kv", factory))
    with pytest.raises(PluginError) as raised:
        chain_for("s3", registry)
    message = str(raised.value)
    assert "credential resolver 'kv'" in message
    assert "clearml-test-vault 0.3.0" in message
    assert "describe_miss(url, config)" in message


def test_a_crashing_resolver_in_the_cli(tmp_path):
    """``storage resolve`` shows the crash as one line naming the resolver, its distribution and the URL."""
    dist = PluginDist(
        distribution="clearml-test-vault",
        entry_point="vault",
        package="clearml_test_vault",
        version="0.3.0",
        files={
            "__init__.py": """
                from clearml_core import CredentialResolverSpec, hookimpl


                class Resolver:
                    def resolve(self, url, config):
                        raise RuntimeError("the vault client is not configured")

                    def describe_miss(self, url, config):
                        return ""


                @hookimpl
                def clearml_credential_resolvers():
                    return [
                        CredentialResolverSpec(
                            name="vault", schemes=("ftp",), order=10, factory="clearml_test_vault:Resolver"
                        )
                    ]
                """
        },
    )
    env = plugin_dists.install(tmp_path / "site", dist)
    result = run_cli("storage", "resolve", "ftp://alice:pa55word@127.0.0.1:2121/data/x.bin", env=env)
    assert result.code == 2, result.text
    assert "Traceback" not in result.text
    errors = [line for line in result.err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.err
    assert "credential resolver 'vault'" in errors[0]
    assert "clearml-test-vault 0.3.0" in errors[0]
    assert "ftp://alice:****@127.0.0.1:2121/data/x.bin" in errors[0]
    assert "pa55word" not in result.text
    assert "RuntimeError: the vault client is not configured" in errors[0]
    assert "CLEARML_CORE_DISABLE_PLUGINS=vault" in errors[0]
