"""Which credentials and endpoint an Azure URL gets: clearml.conf entries, the environment, azure-identity."""

from __future__ import annotations

from pathlib import Path

import pytest
from clearml_core_storage_azure.driver import AzureBlobDriver
from clearml_core_storage_azure.settings import locate, parse_connection_string, settings_for
from hypothesis import given, settings
from hypothesis import strategies as st

from clearml_core.config import Config
from clearml_core.credentials import explain
from clearml_core.errors import ConfigError
from clearml_core.storage.url import InvalidURLError, parse_url
from plugins.storage_azure.tests.support import containers_conf, entry, load

K0, K1, K3, K4 = ("key0-" + "a" * 40, "key1-" + "b" * 40, "key3-" + "c" * 40, "key4-" + "d" * 40)
SAS2 = "sv=2024-01-01&sig=sas2signature0000"
OTHER_CONN = (
    f"DefaultEndpointsProtocol=https;AccountName=other;AccountKey={K3};EndpointSuffix=core.chinacloudapi.cn"
)

ENTRIES = [
    entry(account_name="acct", account_key=K0),
    entry(account_name="acct", container_name="data", account_key=K1),
    entry(account_name="acct", container_name="data-archive", sas_token="?" + SAS2),
    entry(connection_string=OTHER_CONN),
    entry(account_url="http://127.0.0.1:10000/devstoreaccount1", account_key=K4),
    entry(account_name="nokey", container_name="c"),
    entry(container_name="orphan", account_key="never-used-key"),
]


@pytest.fixture
def config(conf_folder: Path) -> Config:
    return load(containers_conf(*ENTRIES), conf_folder)


SOURCE = "{}: sdk.azure.storage.containers[{}]"

# url -> (entry index answering, auth, account, container, blob, endpoint_url)
CASES = [
    (
        "azure://acct.blob.core.windows.net/data/x/y.bin",
        1,
        "account_key",
        "acct",
        "data",
        "x/y.bin",
        "https://acct.blob.core.windows.net",
    ),
    (
        "wasbs://data@acct.blob.core.windows.net/x",
        1,
        "account_key",
        "acct",
        "data",
        "x",
        "https://acct.blob.core.windows.net",
    ),
    (
        "wasb://data@acct.blob.core.windows.net/x",
        1,
        "account_key",
        "acct",
        "data",
        "x",
        "https://acct.blob.core.windows.net",
    ),
    (
        "abfss://data@acct.dfs.core.windows.net/x",
        1,
        "account_key",
        "acct",
        "data",
        "x",
        "https://acct.blob.core.windows.net",
    ),
    ("azure://acct/data/x", 1, "account_key", "acct", "data", "x", "https://acct.blob.core.windows.net"),
    (
        "azure://acct.blob.core.windows.net/data-archive/x",
        2,
        "sas",
        "acct",
        "data-archive",
        "x",
        "https://acct.blob.core.windows.net",
    ),
    ("abfs://data-archive/x", 2, "sas", "acct", "data-archive", "x", "https://acct.blob.core.windows.net"),
    (
        "azure://acct.blob.core.windows.net/dat/x",
        0,
        "account_key",
        "acct",
        "dat",
        "x",
        "https://acct.blob.core.windows.net",
    ),
    (
        "azure://acct.blob.core.windows.net/data2/x",
        0,
        "account_key",
        "acct",
        "data2",
        "x",
        "https://acct.blob.core.windows.net",
    ),
    (
        "azure://other.blob.core.chinacloudapi.cn/c/x",
        3,
        "connection_string",
        "other",
        "c",
        "x",
        "https://other.blob.core.chinacloudapi.cn",
    ),
    (
        "azure://devstoreaccount1.blob.core.windows.net/c/x",
        4,
        "account_key",
        "devstoreaccount1",
        "c",
        "x",
        "http://127.0.0.1:10000/devstoreaccount1",
    ),
    (
        "azure://127.0.0.1:10000/devstoreaccount1/c/x",
        4,
        "account_key",
        "devstoreaccount1",
        "c",
        "x",
        "http://127.0.0.1:10000/devstoreaccount1",
    ),
]


@pytest.mark.parametrize(("url", "index", "auth", "account", "container", "blob", "endpoint"), CASES)
def test_config_entries(
    config: Config, conf_folder: Path, url, index, auth, account, container, blob, endpoint
) -> None:
    details = AzureBlobDriver.describe(parse_url(url), config)
    assert details["resolver"] == "azure-config"
    assert details["source"].endswith(f"sdk.azure.storage.containers[{index}]")
    assert (details["auth"], details["account"], details["container"], details["blob"]) == (
        auth,
        account,
        container,
        blob,
    )
    assert details["endpoint_url"] == endpoint


def test_most_specific_entry_wins_whatever_the_order(conf_folder: Path) -> None:
    for entries in (ENTRIES[:2], ENTRIES[:2][::-1]):
        config = load(containers_conf(*entries), conf_folder)
        resolution = explain("azure://acct.blob.core.windows.net/data/x", config)
        assert resolution.credentials is not None
        assert resolution.credentials["account_key"] == K1


def test_unmatched_account_falls_through_to_the_environment(config: Config, monkeypatch) -> None:
    monkeypatch.setenv("AZURE_STORAGE_ACCOUNT", "acct2")
    monkeypatch.setenv("AZURE_STORAGE_KEY", "env-key-" + "e" * 30)
    resolution = explain("azure://acct2.blob.core.windows.net/data/x", config)
    assert (resolution.resolver, resolution.source) == (
        "azure-env",
        "env AZURE_STORAGE_ACCOUNT + AZURE_STORAGE_KEY",
    )
    assert "no sdk.azure.storage.containers entry matches account 'acct2'" in resolution.attempts[0].note


def test_entry_without_credentials_lends_its_endpoint(conf_folder: Path, monkeypatch, caplog) -> None:
    config = load(
        containers_conf(
            entry(account_name="devstoreaccount1", account_url="http://127.0.0.1:10000/devstoreaccount1")
        ),
        conf_folder,
    )
    monkeypatch.setenv("AZURE_STORAGE_ACCESS_KEY", "access-key-" + "f" * 30)
    details = AzureBlobDriver.describe(parse_url("azure://devstoreaccount1/c/x"), config)
    assert (details["resolver"], details["source"]) == ("azure-env", "env AZURE_STORAGE_ACCESS_KEY")
    assert details["endpoint_url"] == "http://127.0.0.1:10000/devstoreaccount1"
    assert details["endpoint_source"] == "sdk.azure.storage.containers[0]"
    assert any("has no account_key, sas_token or connection_string" in r.getMessage() for r in caplog.records)


def test_entries_that_cannot_apply_are_reported(config: Config, caplog) -> None:
    settings = settings_for(config)
    assert len(settings.entries) == 6
    assert any("containers[6] names no account" in message for message in settings.ignored)


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (entry(account_name="a", account_url="ftp://host/a"), r"account_url must be an http\(s\) URL"),
        (
            entry(account_name="a", account_url="https://a.blob.core.windows.net?sv=1"),
            "must not carry a query",
        ),
        (entry(connection_string="not a connection string"), "is not a storage connection string"),
        (entry(connection_string="AccountName=a"), "has neither AccountKey nor SharedAccessSignature"),
        ("3", "must be an object"),
    ],
)
def test_bad_entries_are_config_errors(conf_folder: Path, bad: str, message: str) -> None:
    config = load(containers_conf(bad), conf_folder)
    with pytest.raises(ConfigError, match=message):
        settings_for(config)


def test_connection_strings() -> None:
    dev = parse_connection_string("UseDevelopmentStorage=true", "x")
    assert (dev.account_name, dev.account_url) == (
        "devstoreaccount1",
        "http://127.0.0.1:10000/devstoreaccount1",
    )
    sas_only = parse_connection_string(
        "BlobEndpoint=https://acct.blob.core.windows.net/;SharedAccessSignature=?sv=1&sig=2", "x"
    )
    assert (sas_only.account_name, sas_only.sas_token, sas_only.account_key) == ("acct", "sv=1&sig=2", None)
    plain = parse_connection_string("DefaultEndpointsProtocol=http;AccountName=acct;AccountKey=abc==", "x")
    assert (plain.account_url, plain.account_key) == ("http://acct.blob.core.windows.net", "abc==")
    assert "abc==" not in repr(plain)
    with pytest.raises(ConfigError) as raised:
        parse_connection_string(
            "AccountName=acct;AccountKey=secret-key-value;Broken", "env AZURE_STORAGE_CONNECTION_STRING"
        )
    assert "secret-key-value" not in str(raised.value) and "env AZURE_STORAGE_CONNECTION_STRING" in str(
        raised.value
    )


def test_path_style_url_needs_a_container() -> None:
    with pytest.raises(InvalidURLError, match="no container"):
        locate(parse_url("azure://127.0.0.1:10000/devstoreaccount1"))


# -- the environment, in MLflow's order --------------------------------------------------------

CONN_ACCT = f"DefaultEndpointsProtocol=https;AccountName=acct;AccountKey={K0}"
CONN_OTHER = f"DefaultEndpointsProtocol=https;AccountName=other;AccountKey={K3}"

# environment -> (resolver, source, auth, account) for azure://acct.blob.core.windows.net/c/x
ENV_CASES = [
    (
        {
            "AZURE_STORAGE_CONNECTION_STRING": CONN_ACCT,
            "AZURE_STORAGE_ACCESS_KEY": K1,
            "AZURE_STORAGE_ACCOUNT": "acct",
            "AZURE_STORAGE_KEY": K4,
        },
        ("azure-env", "env AZURE_STORAGE_CONNECTION_STRING", "connection_string", "acct"),
    ),
    (
        {"AZURE_STORAGE_CONNECTION_STRING": CONN_OTHER, "AZURE_STORAGE_ACCESS_KEY": K1},
        ("azure-env", "env AZURE_STORAGE_ACCESS_KEY", "account_key", "acct"),
    ),
    (
        {"AZURE_STORAGE_ACCESS_KEY": K1, "AZURE_STORAGE_ACCOUNT": "acct", "AZURE_STORAGE_KEY": K4},
        ("azure-env", "env AZURE_STORAGE_ACCESS_KEY", "account_key", "acct"),
    ),
    (
        {"AZURE_STORAGE_ACCOUNT": "acct", "AZURE_STORAGE_KEY": K4},
        ("azure-env", "env AZURE_STORAGE_ACCOUNT + AZURE_STORAGE_KEY", "account_key", "acct"),
    ),
    (
        {"AZURE_STORAGE_ACCOUNT": "ACCT", "AZURE_STORAGE_SAS_TOKEN": "?" + SAS2},
        ("azure-env", "env AZURE_STORAGE_ACCOUNT + AZURE_STORAGE_SAS_TOKEN", "sas", "acct"),
    ),
    (
        {"AZURE_STORAGE_ACCOUNT": "other", "AZURE_STORAGE_KEY": K4},
        ("azure-default-credential", "azure-identity DefaultAzureCredential", "default_credential", "acct"),
    ),
    ({}, ("azure-default-credential", "azure-identity DefaultAzureCredential", "default_credential", "acct")),
]


@pytest.mark.parametrize(("environ", "expected"), ENV_CASES)
def test_environment_precedence(conf_folder: Path, monkeypatch, environ, expected) -> None:
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    config = load("", conf_folder)
    details = AzureBlobDriver.describe(parse_url("azure://acct.blob.core.windows.net/c/x"), config)
    assert (details["resolver"], details["source"], details["auth"], details["account"]) == expected


def test_config_beats_environment(config: Config, monkeypatch) -> None:
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", CONN_ACCT)
    resolution = explain("azure://acct.blob.core.windows.net/data/x", config)
    assert resolution.resolver == "azure-config"
    assert [a.resolver for a in resolution.attempts] == ["azure-config"]


def test_connection_string_endpoint_reaches_an_emulator(conf_folder: Path, monkeypatch) -> None:
    monkeypatch.setenv(
        "AZURE_STORAGE_CONNECTION_STRING",
        f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={K4};BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;",
    )
    details = AzureBlobDriver.describe(
        parse_url("wasbs://c@devstoreaccount1.blob.core.windows.net/x"), load("", conf_folder)
    )
    assert details["endpoint_url"] == "http://127.0.0.1:10000/devstoreaccount1"
    assert details["endpoint_source"] == "env AZURE_STORAGE_CONNECTION_STRING"


def test_account_less_url_takes_the_environment_account(conf_folder: Path, monkeypatch) -> None:
    monkeypatch.setenv("AZURE_STORAGE_ACCOUNT", "acct")
    monkeypatch.setenv("AZURE_STORAGE_KEY", K4)
    details = AzureBlobDriver.describe(parse_url("abfs://c/x"), load("", conf_folder))
    assert (details["account"], details["endpoint_url"]) == ("acct", "https://acct.blob.core.windows.net")


def test_transfer_settings(conf_folder: Path) -> None:
    defaults = settings_for(load("", conf_folder)).transfer
    assert (defaults.max_connections, defaults.block_size, defaults.timeout) == (2, 4 * 1024 * 1024, 600)
    tuned = settings_for(
        load("sdk.azure.storage { max_connections: 8, block_size: 8 MiB, timeout: 30 }", conf_folder)
    ).transfer
    assert (tuned.max_connections, tuned.block_size, tuned.timeout) == (8, 8 * 1024 * 1024, 30)
    with pytest.raises(ConfigError, match="block_size must be at least"):
        settings_for(load("sdk.azure.storage.block_size: 10", conf_folder))
    with pytest.raises(ConfigError, match="timeout must be a number of seconds above 0"):
        settings_for(load("sdk.azure.storage.timeout: 0", conf_folder))


# -- matching boundaries -----------------------------------------------------------------------

_names = st.text("abc0-", min_size=3, max_size=8).filter(
    lambda s: s[0] != "-" and s[-1] != "-" and "--" not in s
)


@settings(max_examples=100, deadline=None, database=None)
@given(entry_account=_names, entry_container=_names, url_account=_names, url_container=_names)
def test_entries_match_whole_names_only(entry_account, entry_container, url_account, url_container) -> None:
    raw = {"account_name": entry_account, "container_name": entry_container, "account_key": K0}
    config = Config({"sdk": {"azure": {"storage": {"containers": [raw]}}}}, {}, [])
    found = settings_for(config).match(
        locate(parse_url(f"azure://{url_account}.blob.core.windows.net/{url_container}/k"))
    )
    assert (found is not None) == (entry_account == url_account and entry_container == url_container)


@settings(max_examples=50, deadline=None, database=None)
@given(account=_names, container=_names)
def test_container_entry_beats_account_entry_in_any_order(account, container) -> None:
    wide = {"account_name": account, "account_key": K0}
    narrow = {"account_name": account, "container_name": container, "account_key": K1}
    for entries in ([wide, narrow], [narrow, wide]):
        config = Config({"sdk": {"azure": {"storage": {"containers": entries}}}}, {}, [])
        found = settings_for(config).match(
            locate(parse_url(f"wasbs://{container}@{account}.blob.core.windows.net/k"))
        )
        assert found is not None and found.container == container
