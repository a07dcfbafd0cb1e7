"""The URL model: every form users write, normalisation, derivation, errors, and round trips."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clearml_core.errors import UserError
from clearml_core.storage.url import InvalidURLError, StorageURL, parse_url

# text, scheme, bucket, host, port, path, canonical str()
FORMS = [
    ("s3://bucket/key", "s3", "bucket", None, None, "key", "s3://bucket/key"),
    ("s3://bucket", "s3", "bucket", None, None, "", "s3://bucket"),
    ("s3://bucket/", "s3", "bucket", None, None, "", "s3://bucket"),
    ("S3://bucket/a//b///c/", "s3", "bucket", None, None, "a//b///c/", "s3://bucket/a//b///c/"),
    ("s3://bucket//lead", "s3", "bucket", None, None, "lead", "s3://bucket/lead"),
    ("s3://my.dotted.bucket/k", "s3", "my.dotted.bucket", None, None, "k", "s3://my.dotted.bucket/k"),
    ("s3://minio:9000/bucket/k/x", "s3", "bucket", "minio", 9000, "k/x", "s3://minio:9000/bucket/k/x"),
    ("s3://10.0.0.5/bucket/k", "s3", "bucket", "10.0.0.5", None, "k", "s3://10.0.0.5/bucket/k"),
    ("s3://localhost/bucket/k", "s3", "bucket", "localhost", None, "k", "s3://localhost/bucket/k"),
    (
        "s3://s3.eu-west-1.amazonaws.com/bucket/k",
        "s3",
        "bucket",
        "s3.eu-west-1.amazonaws.com",
        None,
        "k",
        "s3://s3.eu-west-1.amazonaws.com/bucket/k",
    ),
    ("s3://Minio.Corp.Local/bucket/k", "s3", "bucket", "Minio.Corp.Local", None, "k", None),
    ("s3://minio_host.local/bucket/k", "s3", "bucket", "minio_host.local", None, "k", None),
    (
        "azure://acct.blob.core.windows.net/container/dir/blob.bin",
        "azure",
        "container",
        "acct.blob.core.windows.net",
        None,
        "dir/blob.bin",
        "azure://acct.blob.core.windows.net/container/dir/blob.bin",
    ),
    ("azure://acct/container/x", "azure", "container", "acct.blob.core.windows.net", None, "x", None),
    (
        "wasbs://container@acct.blob.core.windows.net/path/to/x",
        "wasbs",
        "container",
        "acct.blob.core.windows.net",
        None,
        "path/to/x",
        "wasbs://container@acct.blob.core.windows.net/path/to/x",
    ),
    ("wasb://c@acct.blob.core.windows.net/p", "wasb", "c", "acct.blob.core.windows.net", None, "p", None),
    ("abfss://c@acct.dfs.core.windows.net/p", "abfss", "c", "acct.dfs.core.windows.net", None, "p", None),
    ("abfs://container/p/q", "abfs", "container", None, None, "p/q", "abfs://container/p/q"),
    ("gs://bucket/path/x.bin", "gs", "bucket", None, None, "path/x.bin", "gs://bucket/path/x.bin"),
    ("sftp://user@host:2222/data/x", "sftp", None, "host", 2222, "/data/x", "sftp://user@host:2222/data/x"),
    ("ftp://user:pw@Host/pub/x", "ftp", None, "host", None, "/pub/x", "ftp://user:****@host/pub/x"),
    ("hdfs://namenode:8020/user/me/x", "hdfs", None, "namenode", 8020, "/user/me/x", None),
    ("hdfs:///user/me/x", "hdfs", None, None, None, "/user/me/x", "hdfs:///user/me/x"),
    ("file:///tmp/x", "file", None, None, None, "/tmp/x", "file:///tmp/x"),
    ("file://localhost/tmp/x", "file", None, None, None, "/tmp/x", "file:///tmp/x"),
    ("file:/tmp/y/", "file", None, None, None, "/tmp/y/", "file:///tmp/y/"),
    ("/mnt/nfs//share/./a/../b", "file", None, None, None, "/mnt/nfs/share/b", "file:///mnt/nfs/share/b"),
    ("/mnt/share/folder/", "file", None, None, None, "/mnt/share/folder/", "file:///mnt/share/folder/"),
    ("http://Example.com:80/a b/c?x=1#frag", "http", None, "example.com", None, "/a b/c", None),
    (
        "https://files.example.com:8081/p/%C3%BC.txt",
        "https",
        None,
        "files.example.com",
        8081,
        "/p/ü.txt",
        None,
    ),
    ("https://host", "https", None, "host", None, "/", "https://host/"),
    ("http://[::1]:8081/x", "http", None, "::1", 8081, "/x", "http://[::1]:8081/x"),
    ("memory://Root/Case/Kept", "memory", None, "Root", None, "/Case/Kept", "memory://Root/Case/Kept"),
]


@pytest.mark.parametrize(("text", "scheme", "bucket", "host", "port", "path", "canonical"), FORMS)
def test_forms(text, scheme, bucket, host, port, path, canonical) -> None:
    url = parse_url(text)
    assert (url.scheme, url.bucket, url.host, url.port, url.path) == (scheme, bucket, host, port, path)
    if canonical is not None:
        assert str(url) == canonical
    # the revealed text parses back to the same URL, and is stable
    assert parse_url(url.reveal()) == url
    assert parse_url(url.reveal()).reveal() == url.reveal()


def test_http_query_and_quoting() -> None:
    url = parse_url("http://Example.com:80/a b/c?x=1#frag")
    assert url.query == "x=1"
    assert str(url) == "http://example.com/a%20b/c?x=1"
    assert url.join("d").query == ""


def test_relative_and_home_paths_become_absolute(monkeypatch, tmp_path) -> None:
    monkeypatch.chdir(tmp_path)
    assert parse_url("rel/x.bin").path == f"{tmp_path}/rel/x.bin"
    assert parse_url("rel/dir/").path == f"{tmp_path}/rel/dir/"
    assert parse_url(".").path == str(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert parse_url("~/data").path == f"{tmp_path}/home/data"
    assert parse_url(Path("p")).local_path == tmp_path / "p"


def test_azure_and_s3_properties() -> None:
    azure = parse_url("wasbs://models@myaccount.blob.core.windows.net/a/b")
    assert (azure.account, azure.container, azure.key) == ("myaccount", "models", "a/b")
    endpoint = parse_url("s3://minio:9000/bucket/k")
    assert endpoint.endpoint == "minio:9000"
    assert parse_url("s3://bucket/k").endpoint is None
    assert parse_url("s3://bucket/k").account is None


def test_password_is_masked_everywhere_but_reveal() -> None:
    url = parse_url("ftp://alice:p%40ss:word@host/x")
    assert url.user == "alice"
    assert url.password == "p@ss:word"
    for text in (str(url), repr(url), str(url.parent), repr(url.join("y")), f"{url}"):
        assert "p@ss" not in text and "p%40ss" not in text
        assert "****" in text
    assert url.reveal() == "ftp://alice:p%40ss%3Aword@host/x"


def test_password_is_masked_in_errors() -> None:
    with pytest.raises(InvalidURLError) as raised:
        parse_url("ftp://alice:topsecret@host:notaport/x")
    assert "topsecret" not in str(raised.value)
    assert "port" in str(raised.value)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("s3:///x", "s3:// URL has no bucket: 's3:///x'"),
        ("s3://", "no bucket"),
        ("gs:///path", "gs:// URL has no bucket"),
        ("s3://minio:9000/", "names the endpoint 'minio:9000' but no bucket"),
        ("s3://key:secret@bucket/x", "cannot carry credentials"),
        ("azure://acct.blob.core.windows.net/", "has no container"),
        ("wasbs://acct.blob.core.windows.net/x", "has no account"),
        ("wasbs://@acct.blob.core.windows.net/x", "has no container"),
        ("http:///x", "http:// URL has no host"),
        ("https://", "no host"),
        ("ftp:///x", "no host"),
        ("sftp://host:99999/x", "invalid port '99999'"),
        ("http://host:abc/x", "invalid port 'abc'"),
        ("http://ho st/x", "invalid host"),
        ("file://server/share/x", "file:// URL names the host 'server'"),
        ("s3://bucket/a\nb", "control character"),
        ("1abc://x/y", "invalid scheme"),
        ("http://[::1/x", "invalid IPv6 host"),
    ],
)
def test_malformed(text, says) -> None:
    with pytest.raises(InvalidURLError) as raised:
        parse_url(text)
    assert says in str(raised.value)
    assert isinstance(raised.value, UserError)


def test_not_text() -> None:
    with pytest.raises(InvalidURLError, match="must be text"):
        parse_url(42)  # type: ignore[arg-type]


def test_parse_is_idempotent_on_urls() -> None:
    url = parse_url("s3://b/k")
    assert parse_url(url) is url


@pytest.mark.parametrize(
    ("text", "name", "parent", "is_folder"),
    [
        ("s3://b/a/b/c.txt", "c.txt", "s3://b/a/b/", False),
        ("s3://b/a/b/", "b", "s3://b/a/", True),
        ("s3://b/a", "a", "s3://b", False),
        ("s3://b", "", "s3://b", True),
        ("file:///x/y", "y", "file:///x/", False),
        ("file:///", "", "file:///", True),
        ("https://h/a/b?q=1", "b", "https://h/a/", False),
        ("sftp://u@h/a", "a", "sftp://u@h/", False),
        ("wasbs://c@a.blob.core.windows.net/x/y", "y", "wasbs://c@a.blob.core.windows.net/x/", False),
    ],
)
def test_name_parent_folder(text, name, parent, is_folder) -> None:
    url = parse_url(text)
    assert url.name == name
    assert str(url.parent) == parent
    assert url.is_folder is is_folder


def test_join_with_path_relative_to() -> None:
    base = parse_url("s3://bucket/models")
    assert str(base.join("v1/model.bin")) == "s3://bucket/models/v1/model.bin"
    assert str(base.join("/v1//x/")) == "s3://bucket/models/v1//x/"
    assert base.join("") is base
    assert str(parse_url("s3://bucket").join("k")) == "s3://bucket/k"
    assert str(parse_url("/data").join("a b/ü")) == "file:///data/a b/ü"
    assert str(base.with_path("/other//key")) == "s3://bucket/other//key"
    assert str(parse_url("http://h/x").with_path("y z")) == "http://h/y%20z"
    assert base.join("v1/m").relative_to(base) == "v1/m"
    assert str(base.as_folder()) == "s3://bucket/models/"
    with pytest.raises(ValueError, match="not under"):
        parse_url("s3://bucket/modelsX/a").relative_to(base)
    with pytest.raises(ValueError, match="not under"):
        parse_url("s3://other/models/a").relative_to(base)


@pytest.mark.parametrize(
    "text",
    [
        "s3://b/p//a.txt",
        "s3://minio:9000/b/p//a.txt",
        "gs://b/p//a.txt",
        "azure://acct.blob.core.windows.net/c/p//a.txt",
        "wasbs://c@acct.blob.core.windows.net/p//a.txt",
    ],
)
def test_object_keys_keep_empty_segments(text: str) -> None:
    """ClearML's upload_folder to ``s3://b/p/`` writes keys like ``p//a.txt``: they stay as they are."""
    url = parse_url(text)
    assert url.key == "p//a.txt"
    assert str(url) == text and parse_url(str(url)) == url
    assert url.name == "a.txt"
    assert url.parent.key == "p//"
    assert url.parent.name == "" and url.parent.parent.key == "p/"
    assert url.parent.join("a.txt") == url
    assert url.relative_to(url.parent.parent) == "/a.txt"
    assert url != parse_url(text.replace("p//a", "p/a"))


def test_local_and_host_paths_are_still_normalised() -> None:
    assert parse_url("/x//y///z").path == "/x/y/z"
    assert parse_url("file:///x//y/").path == "/x/y/"
    assert parse_url("sftp://h//x//y").path == "/x/y"


def test_root_and_local_path() -> None:
    assert str(parse_url("s3://minio:9000/b/k/x").root) == "s3://minio:9000/b"
    assert str(parse_url("https://h:8081/a/b?x").root) == "https://h:8081/"
    assert parse_url("/tmp/a").local_path == Path("/tmp/a")
    with pytest.raises(InvalidURLError, match="not a local path"):
        _ = parse_url("s3://b/k").local_path


def test_urls_are_frozen_and_hashable() -> None:
    url = parse_url("s3://b/k")
    with pytest.raises(AttributeError):
        url.path = "x"  # type: ignore[misc]
    assert {url, parse_url("s3://b//k")} == {url}


# -- round trips (hypothesis) ---------------------------------------------------------------------

_segment = st.text(
    st.characters(categories=("L", "N", "Zs", "P", "S"), exclude_characters="/\\\x85\u2028\u2029"),
    min_size=1,
    max_size=12,
).filter(lambda s: s not in (".", ".."))
_keys = st.lists(_segment, min_size=0, max_size=4).map("/".join)
_bucket = st.from_regex(r"[a-z0-9][a-z0-9-]{1,20}[a-z0-9]", fullmatch=True)
_host = st.from_regex(r"[a-z][a-z0-9-]{0,10}(\.[a-z][a-z0-9-]{0,10}){0,2}", fullmatch=True)
_port = st.one_of(st.none(), st.integers(1, 65535))
_userinfo = st.text(st.characters(categories=("L", "N", "P", "S")), min_size=1, max_size=10)


@settings(max_examples=200)
@given(scheme=st.sampled_from(["s3", "gs", "azure"]), bucket=_bucket, key=_keys, folder=st.booleans())
def test_round_trip_bucket_urls(scheme: str, bucket: str, key: str, folder: bool) -> None:
    if scheme == "azure":
        text = f"azure://acct.blob.core.windows.net/{bucket}/{key}"
    else:
        text = f"{scheme}://{bucket}/{key}"
    if folder and key:
        text += "/"
    url = parse_url(text)
    assert url.bucket == bucket
    assert url.path == key + ("/" if folder and key else "")
    assert str(url) == (text if key else text.rstrip("/"))
    assert parse_url(str(url)) == url
    assert url.join("x").parent == url.as_folder()
    assert url.join("x").name == "x"


@settings(max_examples=200)
@given(
    scheme=st.sampled_from(["s3", "gs", "azure"]),
    bucket=_bucket,
    segments=st.lists(st.one_of(_segment, st.just("")), min_size=1, max_size=5).filter(lambda s: s[0]),
)
def test_round_trip_bucket_keys_with_empty_segments(scheme: str, bucket: str, segments: list[str]) -> None:
    key = "/".join(segments)
    prefix = f"azure://acct.blob.core.windows.net/{bucket}" if scheme == "azure" else f"{scheme}://{bucket}"
    url = parse_url(f"{prefix}/{key}")
    assert url.key == key
    assert parse_url(str(url)) == url
    assert url.with_path(key) == url


@settings(max_examples=200)
@given(
    scheme=st.sampled_from(["sftp", "ftp", "hdfs", "http", "https", "webdav"]),
    user=st.one_of(st.none(), _userinfo),
    password=st.one_of(st.none(), _userinfo),
    host=_host,
    port=_port,
    path=_keys,
)
def test_round_trip_host_urls(scheme, user, password, host, port, path) -> None:
    url = StorageURL(scheme, "/" + path, host=host, port=port, user=user, password=password if user else None)
    if scheme in ("http", "https") and port in (80, 443):
        return  # default ports are dropped by design
    assert parse_url(url.reveal()) == url
    assert parse_url(url.reveal()).reveal() == url.reveal()
    if url.password is not None:
        assert parse_url(str(url)).password == "****"
        assert parse_url(str(url)).user == user


@settings(max_examples=100)
@given(path=_keys, folder=st.booleans())
def test_round_trip_local_paths(path: str, folder: bool) -> None:
    text = "/" + path + ("/" if folder and path else "")
    url = parse_url(text)
    assert url.scheme == "file"
    assert parse_url(str(url)) == url
    assert url.path == os.path.normpath(text) + ("/" if folder and path else "")


@settings(max_examples=100)
@given(container=_bucket, account=st.from_regex(r"[a-z0-9]{3,12}", fullmatch=True), key=_keys)
def test_round_trip_wasbs(container: str, account: str, key: str) -> None:
    text = f"wasbs://{container}@{account}.blob.core.windows.net/{key}"
    url = parse_url(text)
    assert (url.container, url.account, url.key) == (container, account, key)
    assert str(url) == (text if key else text.rstrip("/"))
    assert parse_url(str(url)) == url
