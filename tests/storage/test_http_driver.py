"""The HTTP driver against the loopback file server: resume, auth, file-server bases, errors."""

from __future__ import annotations

import io
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from clearml_core.config import Config
from clearml_core.storage.backends import reset_drivers
from clearml_core.storage.drivers.http import HttpDriver
from clearml_core.storage.errors import (
    ObjectNotFoundError,
    PermissionDeniedError,
    StorageError,
    TransientStorageError,
    UnsupportedOperationError,
)
from clearml_core.storage.url import parse_url
from clearml_core.testing.servers import free_port
from tests.storage.fileserver import FileServer, serve
from tests.storage.kit_support import defaults_only_config


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Config:
    return defaults_only_config(tmp_path_factory)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[FileServer]:
    with serve(tmp_path / "files") as running:
        yield running
    reset_drivers()


def _driver(config: Config, base: str = "http://127.0.0.1/") -> HttpDriver:
    return HttpDriver(config, parse_url(base))


def _with_files_server(config: Config, files_server: str) -> Config:
    values = config.as_dict()
    values["api"]["files_server"] = files_server
    return Config(values, {}, [])


def test_download_resumes_after_the_connection_drops(
    config: Config, server: FileServer, tmp_path: Path
) -> None:
    data = bytes(range(256)) * 8192  # 2 MiB
    (server.root / "big.bin").write_bytes(data)
    server.drop_after, server.drops = 300_000, 3
    driver = _driver(config)
    target = tmp_path / "big.bin"
    assert driver.download_file(parse_url(f"{server.url}big.bin"), target) == len(data)
    assert target.read_bytes() == data
    gets = [r for r in server.requests if r[0] == "GET"]
    assert len(gets) == 4
    assert gets[0][2] is None
    assert [int(r[2].split("=")[1].rstrip("-")) for r in gets[1:]] == [300_000, 600_000, 900_000]


def test_a_ranged_download_resumes_inside_its_range(config: Config, server: FileServer) -> None:
    data = bytes(range(256)) * 4096
    (server.root / "r.bin").write_bytes(data)
    server.drop_after, server.drops = 100_000, 1
    with _driver(config).open_read(parse_url(f"{server.url}r.bin"), (1000, 500_000)) as stream:
        assert stream.read() == data[1000:500_000]
    ranges = [r[2] for r in server.requests if r[0] == "GET"]
    assert ranges == ["bytes=1000-499999", "bytes=101000-499999"]


def test_a_download_that_keeps_failing_is_transient(config: Config, server: FileServer) -> None:
    (server.root / "f.bin").write_bytes(b"x" * 500_000)
    server.drop_after, server.drops = 1000, 100
    driver = _driver(config)
    driver.resume_attempts = 2
    with pytest.raises(TransientStorageError, match="broke off at byte 3000"):
        with driver.open_read(parse_url(f"{server.url}f.bin")) as stream:
            stream.read()
    assert len([r for r in server.requests if r[0] == "GET"]) == 3


def test_basic_auth_from_the_url(config: Config, server: FileServer) -> None:
    server.auth = ("alice", "wonder-land-pw")
    (server.root / "secret.txt").write_bytes(b"s")
    host = server.url.split("//")[1]
    with pytest.raises(PermissionDeniedError) as raised:
        _driver(config).stat(parse_url(f"{server.url}secret.txt"))
    assert "401" in str(raised.value)
    authed = parse_url(f"http://alice:wonder-land-pw@{host}secret.txt")
    driver = _driver(config, authed.reveal())
    assert driver.stat(authed).size == 1
    driver.upload_stream(io.BytesIO(b"up"), authed.parent.join("up.txt"), size=2)
    assert (server.root / "up.txt").read_bytes() == b"up"
    wrong = parse_url(f"http://alice:not-the-pw@{host}secret.txt")
    with pytest.raises(PermissionDeniedError) as raised:
        _driver(config).open_read(wrong)
    assert "not-the-pw" not in str(raised.value)


def test_uploads_under_a_files_server_with_a_path_prefix(config: Config, server: FileServer) -> None:
    """A file server behind a proxy at /files: POST to the base, field name below it (as ClearML)."""
    server.prefix = "/files"
    driver = _driver(_with_files_server(config, f"{server.url}files/"))
    url = parse_url(f"{server.url}files/project/task/model.bin")
    driver.upload_stream(io.BytesIO(b"weights"), url, size=7)
    assert (server.root / "project/task/model.bin").read_bytes() == b"weights"
    assert ("POST", "/files/", None) in server.requests
    with driver.open_read(url) as stream:
        assert stream.read() == b"weights"
    # without the files_server setting the whole path is the field name, posted to the root
    plain = _driver(config)
    with pytest.raises(ObjectNotFoundError):
        plain.upload_stream(io.BytesIO(b"w"), url, size=1)


def test_upload_to_the_server_root_names_the_whole_path(config: Config, server: FileServer) -> None:
    url = parse_url(server.url).join("a b/ü#?.txt")
    assert str(url).endswith("/a%20b/%C3%BC%23%3F.txt")
    _driver(config).upload_stream(io.BytesIO(b"q"), url)
    assert (server.root / "a b" / "ü#?.txt").read_bytes() == b"q"
    assert server.requests[-1][:2] == ("POST", "/")


def test_transient_statuses_and_retry_after(config: Config, server: FileServer) -> None:
    (server.root / "x").write_bytes(b"x")
    driver = _driver(config)
    for status in (429, 500, 502, 503, 504):
        server.fail_next = [status]
        with pytest.raises(TransientStorageError) as raised:
            driver.stat(parse_url(f"{server.url}x"))
        assert str(status) in str(raised.value)
        assert raised.value.retry_after == 7
    server.fail_next = [503]
    with pytest.raises(TransientStorageError):
        driver.upload_stream(io.BytesIO(b"data"), parse_url(f"{server.url}y"), size=4)
    server.fail_next = [400]
    with pytest.raises(StorageError) as raised:
        driver.stat(parse_url(f"{server.url}x"))
    assert not isinstance(raised.value, TransientStorageError)
    assert driver.stat(parse_url(f"{server.url}x")).size == 1


def test_redirects_are_followed(config: Config, server: FileServer) -> None:
    (server.root / "real.txt").write_bytes(b"moved here")
    server.redirects["/old.txt"] = "/real.txt"
    server.redirects["/loop"] = "/loop"
    driver = _driver(config)
    with driver.open_read(parse_url(f"{server.url}old.txt")) as stream:
        assert stream.read() == b"moved here"
    assert driver.stat(parse_url(f"{server.url}old.txt")).size == 10
    with pytest.raises(StorageError, match="redirects"):
        driver.stat(parse_url(f"{server.url}loop"))


def test_listing_is_unsupported_and_says_so(config: Config, server: FileServer) -> None:
    driver = _driver(config)
    assert driver.capabilities.listing is False
    with pytest.raises(UnsupportedOperationError, match="do not offer listings"):
        list(driver.list(parse_url(server.url)))


def test_a_short_stream_is_an_error(config: Config, server: FileServer) -> None:
    with pytest.raises(StorageError, match="not the 10 announced"):
        _driver(config).upload_stream(io.BytesIO(b"short"), parse_url(f"{server.url}s"), size=10)


def test_connection_refused_is_transient(config: Config) -> None:
    port = free_port()
    with pytest.raises(TransientStorageError, match="ConnectionRefusedError"):
        _driver(config).stat(parse_url(f"http://127.0.0.1:{port}/x"))


def test_keep_alive_connections_are_reused(config: Config, server: FileServer) -> None:
    (server.root / "k").write_bytes(b"k")
    driver = _driver(config)
    for _ in range(5):
        driver.stat(parse_url(f"{server.url}k"))
    assert sum(len(idle) for idle in driver._idle.values()) == 1
    driver.close()
    assert driver._idle == {}


def test_a_stalled_server_times_out_as_configured(config: Config) -> None:
    import time

    values = config.as_dict()
    values["sdk"]["storage"]["http"]["socket_timeout_sec"] = 0.3
    with socket.socket() as silent:  # accepts connections (the kernel does) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)
        started = time.monotonic()
        with pytest.raises(TransientStorageError, match="timed out"):
            _driver(Config(values, {}, [])).stat(parse_url(f"http://127.0.0.1:{silent.getsockname()[1]}/x"))
        assert time.monotonic() - started < 10  # not the default minute
