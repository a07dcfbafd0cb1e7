"""The GCS driver against gcp-storage-emulator: requests per object, errors, presigning, chunking."""

from __future__ import annotations

import io
import json
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from clearml_core_storage_gcs.driver import CLIENTS
from clearml_core_storage_gcs.errors import GCSEndpointError

from clearml_core.errors import UserError
from clearml_core.storage.backends import driver_for
from clearml_core.storage.errors import (
    ObjectNotFoundError,
    PermissionDeniedError,
    TransientStorageError,
    UnsupportedOperationError,
)
from clearml_core.storage.url import parse_url
from clearml_core.testing.proxy import CountingProxy, counting_proxy
from clearml_core.testing.servers import free_port
from plugins.storage_gcs.tests.support import (
    Emulator,
    entry,
    fake_service_account,
    google_conf,
    load,
)


@pytest.fixture(scope="module")
def bucket(gcs_emulator: Emulator) -> str:
    return gcs_emulator.new_bucket("drv")


@pytest.fixture
def proxy(gcs_emulator: Emulator, monkeypatch) -> CountingProxy:
    with counting_proxy(gcs_emulator.port) as running:
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", f"http://{running.netloc}")
        yield running


def test_one_request_per_small_object(proxy: CountingProxy, bucket: str, conf_folder: Path, tmp_path) -> None:
    url = parse_url(f"gs://{bucket}/count/small.txt")
    driver = driver_for(url, load("", conf_folder))
    source = tmp_path / "small.txt"
    source.write_bytes(b"x" * 5000)
    proxy.reset()
    driver.upload_file(source, url)
    assert proxy.methods() == ["POST"]  # one multipart upload: metadata and bytes together
    proxy.reset()
    driver.upload_stream(io.BytesIO(b"y" * 5000), url, extra={"purpose": "test"})  # size unknown, still one
    assert proxy.methods() == ["POST"]
    proxy.reset()
    assert driver.download_file(url, tmp_path / "out.txt") == 5000
    assert proxy.methods() == ["GET"]
    proxy.reset()
    with driver.open_read(url) as stream:
        assert stream.read() == b"y" * 5000
    assert proxy.methods() == ["GET"]
    proxy.reset()
    info = driver.stat(url)
    assert (info.size, info.metadata["purpose"]) == (5000, "test")
    driver.delete(url)
    assert proxy.methods() == ["GET", "DELETE"]
    proxy.reset()
    with pytest.raises(ObjectNotFoundError):
        driver.open_read(url)
    assert proxy.methods() == ["GET"]  # a 404 is never retried


def test_large_upload_is_resumable_in_chunks(proxy: CountingProxy, bucket: str, conf_folder: Path) -> None:
    config = load("sdk.google.storage.upload_chunk_size: 262144", conf_folder)
    url = parse_url(f"gs://{bucket}/big/stream.bin")
    data = bytes(range(256)) * (40 * 1024 + 7)  # a little over 10 MiB, of unknown size
    proxy.reset()
    driver_for(url, config).upload_stream(io.BufferedReader(io.BytesIO(data)), url)
    methods = proxy.methods()
    assert methods[0] == "POST" and methods.count("PUT") == -(-len(data) // 262144)
    with driver_for(url, config).open_read(url, (len(data) - 10, None)) as stream:
        assert stream.read() == data[-10:]


def test_chunked_download_pins_one_generation(
    proxy: CountingProxy, bucket: str, conf_folder: Path, tmp_path
) -> None:
    config = load("sdk.google.storage.download_chunk_size: 262144", conf_folder)
    url = parse_url(f"gs://{bucket}/chunked/d.bin")
    data = bytes(range(256)) * 3000  # 768000 bytes: three ranges
    driver = driver_for(url, config)
    driver.upload_stream(io.BytesIO(data), url, size=len(data))
    proxy.reset()
    assert driver.download_file(url, tmp_path / "d.bin") == len(data)
    assert (tmp_path / "d.bin").read_bytes() == data
    # three ranged GETs; real GCS also pins the second and third to the first one's generation
    # (this emulator sends no x-goog-generation, so there is nothing to pin to here)
    assert [method for method, _path, _query in proxy.requests] == ["GET", "GET", "GET"]


class _Refusing(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    status = 403
    seen: list[str] = []

    def log_message(self, format: str, *args: object) -> None:
        return

    def do_GET(self) -> None:
        type(self).seen.append(self.command)
        body = json.dumps({"error": {"code": self.status, "message": "refused here"}}).encode()
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def refusing(monkeypatch):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Refusing)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", f"http://127.0.0.1:{server.server_address[1]}")
    _Refusing.seen = []
    yield _Refusing
    server.shutdown()
    server.server_close()


def test_refused_anonymous_request_says_how_to_give_credentials(refusing, conf_folder: Path) -> None:
    refusing.status = 403
    url = parse_url("gs://private-bucket/x.bin")
    with pytest.raises(PermissionDeniedError) as raised:
        driver_for(url, load("", conf_folder)).open_read(url)
    message = str(raised.value)
    assert "went without credentials" in message and "GOOGLE_APPLICATION_CREDENTIALS" in message
    assert str(url) in message
    assert refusing.seen == ["GET"]  # a 403 is never retried


def test_server_errors_are_transient_and_retried(refusing, conf_folder: Path) -> None:
    refusing.status = 503
    url = parse_url("gs://b/x.bin")
    with pytest.raises(TransientStorageError, match="answered 503"):
        driver_for(url, load("sdk.google.storage.retry_timeout: 1.5", conf_folder)).open_read(url)
    assert len(refusing.seen) >= 2  # google-cloud-storage's retry, within retry_timeout


def test_unreachable_endpoint_is_a_clear_user_error(conf_folder: Path, monkeypatch) -> None:
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", f"http://127.0.0.1:{free_port()}")
    url = parse_url("gs://b/x.bin")
    with pytest.raises(GCSEndpointError) as raised:
        driver_for(url, load("sdk.google.storage.retry_timeout: 0", conf_folder)).stat(url)
    assert isinstance(raised.value, UserError) and isinstance(raised.value, TransientStorageError)
    assert "cannot be reached" in str(raised.value)


def test_unreachable_token_endpoint_names_the_service_account(conf_folder: Path, tmp_path: Path) -> None:
    key = tmp_path / "key.json"
    key.write_text(json.dumps(fake_service_account("robot@test-project.iam.gserviceaccount.com")))
    config = load(google_conf(credentials_json=str(key), retry_timeout=0), conf_folder)
    url = parse_url("gs://b/x.bin")
    with pytest.raises(GCSEndpointError) as raised:
        driver_for(url, config).stat(url)
    assert "robot@test-project.iam.gserviceaccount.com" in str(raised.value)
    assert "PRIVATE KEY" not in str(raised.value)


def test_presigned_urls_need_a_key(
    bucket: str, gcs_emulator: Emulator, conf_folder: Path, tmp_path, monkeypatch
) -> None:
    url = parse_url(f"gs://{bucket}/shared/report.txt")
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_emulator.endpoint)
    anonymous = driver_for(url, load("", conf_folder))
    anonymous.upload_stream(io.BytesIO(b"report"), url)
    with pytest.raises(UnsupportedOperationError, match="signing needs a service-account key"):
        anonymous.presign(url)
    monkeypatch.delenv("STORAGE_EMULATOR_HOST")
    key = tmp_path / "key.json"
    key.write_text(json.dumps(fake_service_account("signer@test-project.iam.gserviceaccount.com")))
    signer = driver_for(url, load(google_conf(entry(bucket=bucket, credentials_json=str(key))), conf_folder))
    signed = signer.presign(url, expires=120)  # signed here with the key: no request is sent
    assert signed.startswith(f"https://storage.googleapis.com/{bucket}/shared/report.txt?")
    assert "X-Goog-Algorithm=GOOG4-RSA-SHA256" in signed and "X-Goog-Expires=120" in signed
    assert "signer%40test-project.iam.gserviceaccount.com" in signed
    # the emulator does not check signatures, but serves the object the URL names
    with urllib.request.urlopen(
        signed.replace("https://storage.googleapis.com", gcs_emulator.endpoint), timeout=30
    ) as response:
        assert response.read() == b"report"
    put = signer.presign(url, method="put")
    assert "X-Goog-Signature=" in put
    with pytest.raises(UnsupportedOperationError, match="get or put"):
        signer.presign(url, method="delete")


def test_clients_are_shared_per_credentials(emulated: Emulator, conf_folder: Path) -> None:
    one, two = emulated.new_bucket("share"), emulated.new_bucket("share")
    config = load("", conf_folder)
    before = len(CLIENTS)
    for name in (one, two):
        url = parse_url(f"gs://{name}/x.txt")
        driver_for(url, config).upload_stream(io.BytesIO(b"x"), url)
    assert len(CLIENTS) == before + 1


def test_missing_bucket_is_not_found(emulated: Emulator, conf_folder: Path) -> None:
    url = parse_url("gs://no-such-bucket-here/x.bin")
    driver = driver_for(url, load("", conf_folder))
    with pytest.raises(ObjectNotFoundError):
        driver.stat(url)
    with pytest.raises(ObjectNotFoundError):
        list(driver.list(parse_url("gs://no-such-bucket-here/")))
