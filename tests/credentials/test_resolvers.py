"""The base classes resolvers are written with: a miss explained from what ``resolve`` saw, and
the clearml.conf resolver (the URL's entry, else the section's own fields), here for a small
backend section ``sdk.memo``, asked through the chain."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import pytest

from clearml_core import CredentialResolverSpec, hookimpl
from clearml_core.config import Config
from clearml_core.credentials import (
    ConfigEntryResolver,
    ConfigLookup,
    Credentials,
    ExplainingResolver,
    Misses,
    explain,
)
from clearml_core.credentials.matching import best_match, inherit
from clearml_core.plugins import PluginRegistry
from clearml_core.storage.url import parse_url

# -- a backend's clearml.conf resolver, as a plugin would write it -----------------------------------


@dataclass(frozen=True)
class MemoEntry:
    index: int
    bucket: str
    values: Mapping[str, Any]

    @property
    def where(self) -> str:
        return f"bucket {self.bucket}"


MemoFound = ConfigLookup[Mapping[str, Any], MemoEntry]  # settings: the section's own fields


def _keys(values: Mapping[str, Any], source: str) -> Credentials | None:
    if values.get("key") and values.get("secret"):
        return Credentials({"key": values["key"], "secret": values["secret"]}, source)
    return None


class MemoConfigResolver(ConfigEntryResolver[MemoEntry, MemoFound]):
    entries = "sdk.memo.credentials"
    section = "sdk.memo"
    wanted = "key/secret"
    unusable_entries: list[str] = []

    def lookup(self, url: Any, config: Config) -> MemoFound:
        defaults = {k: v for k, v in config.get_dict("sdk.memo").items() if k != "credentials"}
        entries = [
            MemoEntry(index, raw["bucket"], inherit(defaults, raw))
            for index, raw in enumerate(config.get_list("sdk.memo.credentials"))
        ]
        entry = best_match(entries, f"{url.bucket}/{url.key}", lambda e: e.bucket)
        source = f"clearml.conf: sdk.memo.credentials[{entry.index}]" if entry is not None else ""
        return ConfigLookup(defaults, f"bucket {url.bucket!r}", entry, source)

    def from_entry(self, entry: MemoEntry, found: MemoFound) -> Credentials | None:
        return _keys(entry.values, found.entry_source)

    def from_section(self, found: MemoFound) -> Credentials | None:
        return _keys(found.settings, "clearml.conf: sdk.memo")

    def unusable(self, entry: MemoEntry, found: MemoFound) -> None:
        MemoConfigResolver.unusable_entries.append(entry.where)


class EntriesOnlyResolver(MemoConfigResolver):
    """A section without credentials of its own (like sdk.azure.storage)."""

    section = None


class Fallback(ExplainingResolver):
    def find(self, url: Any, config: Config, misses: Misses) -> Credentials | None:
        return Credentials({"key": "from-the-fallback"}, "fallback")


def _registry(config_resolver: str = "MemoConfigResolver") -> PluginRegistry:
    module = ModuleType("memo_resolvers")

    @hookimpl
    def clearml_credential_resolvers() -> list[CredentialResolverSpec]:
        return [
            CredentialResolverSpec(
                name="memo-config", schemes=("s3",), order=100, factory=f"{__name__}:{config_resolver}"
            ),
            CredentialResolverSpec(
                name="memo-fallback", schemes=("s3",), order=200, factory=f"{__name__}:Fallback"
            ),
        ]

    module.clearml_credential_resolvers = clearml_credential_resolvers  # type: ignore[attr-defined]
    registry = PluginRegistry(discover=False)
    registry.register(module, "memo")
    return registry


def _config(memo: dict[str, Any]) -> Config:
    return Config({"sdk": {"memo": memo}}, {}, [])


@pytest.fixture(autouse=True)
def _forget_unusable():
    MemoConfigResolver.unusable_entries.clear()


MEMO = {
    "key": "SECTIONKEY",
    "secret": "section-secret",
    "credentials": [{"bucket": "data", "key": "DATAKEY", "secret": "data-secret"}, {"bucket": "data/public"}],
}


def test_the_most_specific_entry_answers_and_the_section_serves_the_rest():
    config = _config(MEMO)
    registry = _registry()

    on_entry = explain("s3://data/x", config, registry)
    assert (on_entry.resolver, on_entry.source) == ("memo-config", "clearml.conf: sdk.memo.credentials[0]")
    assert on_entry.credentials is not None and on_entry.credentials["key"] == "DATAKEY"

    inherited = explain("s3://data/public/y", config, registry)  # unset fields inherit the section's
    assert inherited.source == "clearml.conf: sdk.memo.credentials[1]"
    assert inherited.credentials is not None and inherited.credentials["key"] == "SECTIONKEY"

    elsewhere = explain("s3://other/z", config, registry)
    assert elsewhere.source == "clearml.conf: sdk.memo"


def test_a_miss_names_the_entries_and_the_section_looked_at():
    config = _config({"credentials": [{"bucket": "data", "key": "K", "secret": "S"}]})
    resolution = explain("s3://other/z", config, _registry())

    assert resolution.resolver == "memo-fallback"
    assert (
        resolution.attempts[0].note
        == "no sdk.memo.credentials entry matches bucket 'other', and sdk.memo sets no key/secret"
    )


def test_an_entry_without_credentials_is_a_miss_that_names_it():
    config = _config({"credentials": [{"bucket": "data"}]})
    resolution = explain("s3://data/x", config, _registry())

    assert resolution.resolver == "memo-fallback"
    assert resolution.attempts[0].note == (
        "clearml.conf: sdk.memo.credentials[0] (bucket data) matches but sets no key/secret, "
        "and sdk.memo has none to inherit"
    )
    assert MemoConfigResolver.unusable_entries == ["bucket data"]


def test_a_section_without_credentials_of_its_own_is_not_named():
    config = _config({"key": "K", "secret": "S", "credentials": []})
    resolution = explain("s3://other/z", config, _registry("EntriesOnlyResolver"))

    assert resolution.resolver == "memo-fallback"  # the section's keys are not asked
    assert resolution.attempts[0].note == "no sdk.memo.credentials entry matches bucket 'other'"


# -- ExplainingResolver ------------------------------------------------------------------------------


class Counting(ExplainingResolver):
    """Misses every URL with two notes, counting how often it looks."""

    def __init__(self) -> None:  # its own __init__, not calling the base's
        self.looked: list[str] = []

    def find(self, url: Any, config: Config, misses: Misses) -> Credentials | None:
        self.looked.append(url.bucket)
        misses.note(f"nothing for {url.bucket}")
        misses.note("")  # adds nothing
        misses.note("nor anywhere else")
        return None


def test_describe_miss_says_what_resolve_noted_without_looking_again():
    resolver, config, url = Counting(), Config({}, {}, []), parse_url("s3://a/x")

    assert resolver.resolve(url, config) is None
    assert resolver.describe_miss(url, config) == "nothing for a; nor anywhere else"
    assert resolver.looked == ["a"]


def test_describe_miss_looks_again_for_anything_else():
    resolver, config = Counting(), Config({}, {}, [])
    resolver.resolve(parse_url("s3://a/x"), config)

    assert resolver.describe_miss(parse_url("s3://b/x"), config) == "nothing for b; nor anywhere else"
    assert resolver.describe_miss(parse_url("s3://b/x"), Config({}, {}, [])).startswith("nothing for b")
    assert resolver.looked == ["a", "b", "b"]


def test_the_notes_of_a_miss_are_kept_per_thread():
    resolver, config = Counting(), Config({}, {}, [])
    mine = parse_url("s3://mine/x")
    resolver.resolve(mine, config)
    other = threading.Thread(target=resolver.resolve, args=(parse_url("s3://theirs/x"), config))
    other.start()
    other.join()

    assert resolver.describe_miss(mine, config) == "nothing for mine; nor anywhere else"
    assert resolver.looked == ["mine", "theirs"]


def test_describe_miss_after_an_answer_says_nothing():
    config = Config({}, {}, [])
    assert Fallback().describe_miss(parse_url("s3://a/x"), config) == ""
