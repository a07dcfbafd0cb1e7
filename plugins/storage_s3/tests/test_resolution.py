"""Which settings and credentials answer for an s3:// URL: table-driven cases and hypothesis boundaries.

No server: resolution reads clearml.conf, the environment and boto3's own files only.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from clearml_core_storage_s3.driver import S3Driver
from clearml_core_storage_s3.errors import MissingCredentialsError
from clearml_core_storage_s3.settings import S3Settings
from hypothesis import given, settings
from hypothesis import strategies as st

from clearml_core.config import Config
from clearml_core.storage.backends import driver_for
from clearml_core.storage.url import parse_url
from plugins.storage_s3.tests.support import load


def config_of(s3: dict[str, Any], boto3: dict[str, Any] | None = None) -> Config:
    """A configuration holding only ``sdk.aws`` (built directly: no file, no defaults)."""
    aws: dict[str, Any] = {"s3": s3}
    if boto3 is not None:
        aws["boto3"] = boto3
    return Config({"sdk": {"aws": aws}}, {}, [])


def describe(url: str, config: Config) -> dict[str, Any]:
    return S3Driver.describe(parse_url(url), config)


def entry(**fields: Any) -> dict[str, Any]:
    return {
        "key": f"AKIA{fields.get('bucket', fields.get('host', 'x'))}".upper()[:20].ljust(20, "0"),
        "secret": "s3cr3t-value",
        **fields,
    }


# -- which entry answers ---------------------------------------------------------------------------

ENTRIES = [
    {"bucket": "data", "key": "AKIADATA000000000001", "secret": "secret-data"},
    {"bucket": "mybucket", "key": "AKIAMYBUCKET00000002", "secret": "secret-my"},
    {"bucket": "mybucket/team-a", "key": "AKIATEAMA00000000003", "secret": "secret-team-a"},
    {"host": "minio:900", "key": "AKIAMINIO90000000004", "secret": "secret-900", "secure": False},
    {"host": "minio:9000", "key": "AKIAMINIO9000000005", "secret": "secret-9000", "secure": False},
    {"host": "minio:9000", "bucket": "models", "key": "AKIAMINIOMODELS00006", "secret": "secret-models"},
    {"host": "s3.example.com", "key": "AKIAEXAMPLE000000007", "secret": "secret-example"},
    {"host": "plain.example.com", "key": "AKIAPLAIN00000000008", "secret": "secret-plain", "secure": False},
]
DEFAULTS = {"key": "AKIADEFAULT000000009", "secret": "secret-default", "region": "eu-west-1"}


@pytest.mark.parametrize(
    ("url", "entry_index", "endpoint"),
    [
        ("s3://data/x.bin", 0, None),
        ("s3://data", 0, None),
        ("s3://data-other/x.bin", None, None),  # a bucket entry never serves a longer name
        ("s3://dat/x.bin", None, None),
        ("s3://mybucket/x", 1, None),
        ("s3://mybucket/team-a/x", 2, None),  # the more specific entry wins, listed later or not
        ("s3://mybucket/team-a", 2, None),
        ("s3://mybucket/team-ab/x", 1, None),  # sub-paths match on segments
        ("s3://minio:9000/any/x", 4, "http://minio:9000"),
        ("s3://minio:900/any/x", 3, "http://minio:900"),  # minio:900 never serves minio:9000
        ("s3://minio:90/any/x", None, "https://minio:90"),
        ("s3://minio:9000/models/x", 5, "https://minio:9000"),  # host + bucket beats host alone
        ("s3://minio:9000/models-old/x", 4, "http://minio:9000"),
        ("s3://s3.example.com:443/b/k", 6, "https://s3.example.com:443"),  # no port = 443 (secure)
        ("s3://s3.example.com/b/k", 6, "https://s3.example.com"),  # a dotted "bucket" named by a host entry
        ("s3://s3.example.com:80/b/k", None, "https://s3.example.com:80"),
        ("s3://plain.example.com:80/b/k", 7, "http://plain.example.com:80"),  # secure false: no port = 80
        ("s3://plain.example.com:443/b/k", None, "https://plain.example.com:443"),
    ],
)
def test_the_most_specific_whole_match_answers(
    url: str, entry_index: int | None, endpoint: str | None
) -> None:
    config = config_of({**DEFAULTS, "credentials": ENTRIES})
    found = describe(url, config)
    assert found["endpoint_url"] == endpoint
    if entry_index is None:
        assert found["entry"] is None
        assert found["source"] == "default: sdk.aws.s3.key"
        assert found["access_key_id"] == "****0009"
    else:
        assert found["entry"] == f"sdk.aws.s3.credentials[{entry_index}]"
        assert found["source"] == f"default: sdk.aws.s3.credentials[{entry_index}]"
        assert found["access_key_id"] == "****" + ENTRIES[entry_index]["key"][-4:]
        assert found["resolver"] == "s3-config"


def test_order_of_entries_does_not_matter() -> None:
    reversed_entries = list(reversed(ENTRIES[:3]))
    config = config_of({"credentials": reversed_entries})
    assert describe("s3://mybucket/team-a/f", config)["access_key_id"] == "****0003"
    assert describe("s3://mybucket/f", config)["access_key_id"] == "****0002"


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({}, {"region": "eu-west-1", "verify": "/etc/ca.pem", "multipart": True, "secure": True}),
        ({"region": "us-west-2"}, {"region": "us-west-2", "verify": "/etc/ca.pem"}),
        ({"verify": False}, {"verify": False, "region": "eu-west-1"}),
        ({"verify": "/opt/team-ca.pem"}, {"verify": "/opt/team-ca.pem"}),
        ({"multipart": False}, {"multipart": False}),
        ({"region": ""}, {"region": "eu-west-1"}),  # empty is unset: inherited
    ],
)
def test_unset_fields_inherit_the_section(fields: dict[str, Any], expected: dict[str, Any]) -> None:
    config = config_of(
        {
            "region": "eu-west-1",
            "verify": "/etc/ca.pem",
            "credentials": [{"bucket": "b", "key": "AKIAINHERIT000000001", "secret": "s", **fields}],
        }
    )
    found = describe("s3://b/k", config)
    for name, value in expected.items():
        assert found[name] == value, name


def test_keys_are_inherited_too() -> None:
    config = config_of({**DEFAULTS, "credentials": [{"bucket": "b", "region": "ap-south-1"}]})
    found = describe("s3://b/k", config)
    assert found["source"] == "default: sdk.aws.s3.credentials[0]"
    assert found["access_key_id"] == "****0009"
    assert found["region"] == "ap-south-1"


def test_secure_false_is_an_http_endpoint_and_https_is_the_default() -> None:
    config = config_of(
        {
            "credentials": [
                entry(host="a.local:9000", secure=False),
                entry(host="b.local:9000"),
                entry(host="http://c.local:9000"),
            ]
        }
    )
    assert describe("s3://a.local:9000/b/k", config)["endpoint_url"] == "http://a.local:9000"
    assert describe("s3://a.local:9000/b/k", config)["secure"] is False
    assert describe("s3://b.local:9000/b/k", config)["endpoint_url"] == "https://b.local:9000"
    assert describe("s3://c.local:9000/b/k", config)["endpoint_url"] == "http://c.local:9000"


def test_verify_false_or_a_bundle_globally() -> None:
    assert describe("s3://b/k", config_of({**DEFAULTS, "verify": False}))["verify"] is False
    assert describe("s3://b/k", config_of({**DEFAULTS, "verify": "~/ca.pem"}))["verify"].endswith("/ca.pem")
    assert describe("s3://b/k", config_of({**DEFAULTS, "verify": "true"}))["verify"] is True
    assert describe("s3://b/k", config_of(DEFAULTS))["verify"] is True


def test_an_entry_without_credentials_warns_and_keeps_its_endpoint(caplog, monkeypatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAFROMENV000000042")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "env-secret-value")
    config = config_of(
        {"credentials": [{"host": "minio.local:9000", "secure": False, "region": "eu-central-1"}]}
    )
    with caplog.at_level(logging.WARNING, logger="clearml_core.storage.s3"):
        found = describe("s3://minio.local:9000/b/k", config)
        describe("s3://minio.local:9000/b/other", config)
    assert found["resolver"] == "s3-env"
    assert found["source"] == "env AWS_ACCESS_KEY_ID"
    assert found["endpoint_url"] == "http://minio.local:9000"
    assert found["region"] == "eu-central-1"
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, warnings  # said once, not per request
    assert "sdk.aws.s3.credentials[0]" in warnings[0]
    assert "no key/secret" in warnings[0]


def test_an_entry_naming_neither_bucket_nor_host_is_reported(caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="clearml_core.storage.s3"):
        parsed = S3Settings(config_of({"credentials": [{"key": "AKIAX", "secret": "y"}]}))
    assert parsed.entries == []
    assert "names neither a bucket nor a host" in caplog.text


def test_profile_and_chain_in_config() -> None:
    config = config_of(
        {
            "credentials": [
                {"bucket": "p", "profile": "team"},
                {"bucket": "c", "use_credentials_chain": True},
            ]
        }
    )
    assert describe("s3://p/k", config)["profile"] == "team"
    assert describe("s3://p/k", config)["source"] == "default: sdk.aws.s3.credentials[0] (profile 'team')"
    chain = describe("s3://c/k", config)
    assert chain["source"] == "default: sdk.aws.s3.credentials[1] (boto3 credentials chain)"
    assert chain["access_key_id"] is None


def test_source_names_the_file_and_the_entry(clearml_home) -> None:
    config = load(
        'sdk.aws.s3 {\n  key: "AKIASECTION000000001"\n  secret: "section-secret"\n'
        '  credentials: [\n    { bucket: "x", key: "AKIAENTRY00000000000", secret: "entry-secret" }\n'
        '    { bucket: "y", key: "AKIAENTRY00000000001", secret: "entry-secret" }\n  ]\n}\n',
        clearml_home,
    )
    assert describe("s3://y/k", config)["source"].endswith(".conf: sdk.aws.s3.credentials[1]")
    assert describe("s3://y/k", config)["source"].startswith("~/clearml-")
    assert describe("s3://z/k", config)["source"].endswith(".conf: sdk.aws.s3.key")


def test_config_beats_environment(monkeypatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAFROMENV000000042")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "env-secret-value")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "sa-east-1")
    config = config_of({"credentials": [entry(bucket="conf", region="eu-north-1")]})
    assert describe("s3://conf/k", config)["resolver"] == "s3-config"
    assert describe("s3://conf/k", config)["region"] == "eu-north-1"
    other = describe("s3://other/k", config)
    assert other["resolver"] == "s3-env"
    assert other["access_key_id"] == "****0042"
    assert other["region"] == "sa-east-1"


def test_no_keys_anywhere_is_boto3s_chain(clearml_home) -> None:
    credentials = clearml_home / ".aws" / "credentials"
    credentials.parent.mkdir()
    credentials.write_text(
        "[default]\naws_access_key_id = AKIAFROMFILE00000077\naws_secret_access_key = file-secret\n"
    )
    found = describe("s3://any/k", config_of({}))
    assert found["resolver"] == "s3-boto-chain"
    assert found["source"] == "boto3 chain: shared-credentials-file"
    assert found["access_key_id"] == "****0077"


def test_no_credentials_at_all_says_what_to_set() -> None:
    url = parse_url("s3://lonely-bucket/some/key.bin")
    driver = driver_for(url, config_of({}))
    with pytest.raises(MissingCredentialsError) as raised:
        driver.stat(url)
    message = str(raised.value)
    assert "s3://lonely-bucket/some/key.bin" in message
    for resolver in ("s3-config", "s3-env", "s3-boto-chain"):
        assert resolver in message
    for setting in ("sdk.aws.s3.credentials", "sdk.aws.s3.key", "AWS_ACCESS_KEY_ID", "AWS_PROFILE"):
        assert setting in message
    assert 'bucket: "lonely-bucket"' in message
    assert raised.value.exit_code == 2


def test_addressing_style_is_checked() -> None:
    from clearml_core.errors import ConfigError

    with pytest.raises(ConfigError, match="addressing_style"):
        S3Settings(config_of({}, {"addressing_style": "sideways"}))


# -- hypothesis: matching boundaries -----------------------------------------------------------------

_BUCKET = st.from_regex(r"[a-z0-9][a-z0-9-]{1,10}[a-z0-9]", fullmatch=True)
_SEGMENT = st.from_regex(r"[A-Za-z0-9_.-]{1,6}", fullmatch=True).filter(lambda s: s not in (".", ".."))


@settings(max_examples=200, deadline=None)
@given(entry_bucket=_BUCKET, url_bucket=_BUCKET, rest=st.lists(_SEGMENT, max_size=3))
def test_a_bucket_entry_serves_exactly_its_bucket(
    entry_bucket: str, url_bucket: str, rest: list[str]
) -> None:
    parsed = S3Settings(config_of({"credentials": [entry(bucket=entry_bucket)]}))
    url = parse_url("s3://" + "/".join([url_bucket, *rest]))
    assert (parsed.match(parsed.locate(url)) is not None) == (entry_bucket == url_bucket)


@settings(max_examples=200, deadline=None)
@given(bucket=_BUCKET, sub=st.lists(_SEGMENT, min_size=1, max_size=3), path=st.lists(_SEGMENT, max_size=4))
def test_a_sub_path_entry_matches_on_segments(bucket: str, sub: list[str], path: list[str]) -> None:
    parsed = S3Settings(
        config_of({"credentials": [entry(bucket=bucket), entry(bucket="/".join([bucket, *sub]))]})
    )
    found = parsed.match(parsed.locate(parse_url("s3://" + "/".join([bucket, *path]))))
    assert found is not None
    expected = 1 if path[: len(sub)] == sub else 0
    assert found.index == expected


@settings(max_examples=200, deadline=None)
@given(
    entry_port=st.one_of(st.none(), st.integers(1, 65535)),
    url_port=st.one_of(st.none(), st.integers(1, 65535)),
    secure=st.booleans(),
)
def test_a_host_entry_serves_exactly_its_port(
    entry_port: int | None, url_port: int | None, secure: bool
) -> None:
    host = "minio.internal" + (f":{entry_port}" if entry_port else "")
    parsed = S3Settings(config_of({"credentials": [entry(host=host, secure=secure)]}))
    url = parse_url("s3://minio.internal" + (f":{url_port}" if url_port else "") + "/bucket/key")
    default = 443 if secure else 80
    expected = (entry_port or default) == (url_port or default)
    assert (parsed.match(parsed.locate(url)) is not None) == expected
