"""The Azure driver against Azurite: requests per object, errors, presigned URLs, SAS, client reuse."""

from __future__ import annotations

import datetime as dt
import io
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from clearml_core_storage_azure.driver import CLIENTS
from clearml_core_storage_azure.errors import AzureEndpointError

from clearml_core.config import Config
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
from plugins.storage_azure.tests.support import (
    ACCOUNT,
    KEY,
    WRONG_KEY,
    Azurite,
    containers_conf,
    entry,
    load,
)


@pytest.fixture(scope="module")
def container(azurite: Azurite) -> str:
    return azurite.new_container("drv")


@pytest.fixture
def proxy(azurite: Azurite) -> CountingProxy:
    with counting_proxy(azurite.port) as running:
        yield running


def _conf(folder: Path, account_url: str, key: str = KEY, **settings) -> Config:
    return load(
        containers_conf(entry(account_name=ACCOUNT, account_key=key, account_url=account_url), **settings),
        folder,
    )


def _url(container: str, key: str) -> str:
    return f"azure://{ACCOUNT}.blob.core.windows.net/{container}/{key}"


def test_one_request_per_small_object(
    proxy: CountingProxy, container: str, conf_folder: Path, tmp_path
) -> None:
    config = _conf(conf_folder, f"http://{proxy.netloc}/{ACCOUNT}")
    url = parse_url(_url(container, "count/small.txt"))
    driver = driver_for(url, config)
    source = tmp_path / "small.txt"
    source.write_bytes(b"x" * 5000)
    proxy.reset()
    driver.upload_file(source, url)
    assert proxy.methods() == ["PUT"]
    proxy.reset()
    driver.upload_stream(io.BytesIO(b"y" * 5000), url)  # size unknown, but small: still one PUT
    assert proxy.methods() == ["PUT"]
    proxy.reset()
    assert driver.download_file(url, tmp_path / "out.txt") == 5000
    assert proxy.methods() == ["GET"]
    proxy.reset()
    with driver.open_read(url) as stream:
        assert stream.read() == b"y" * 5000
    assert proxy.methods() == ["GET"]
    proxy.reset()
    assert driver.stat(url).size == 5000
    driver.delete(url)
    assert proxy.methods() == ["HEAD", "DELETE"]
    proxy.reset()
    with pytest.raises(ObjectNotFoundError):
        driver.open_read(url)
    assert proxy.methods() == ["GET"]  # a 404 is never retried


def test_large_stream_of_unknown_size_is_staged_in_blocks(
    azurite: Azurite, container: str, conf_folder: Path
) -> None:
    config = _conf(conf_folder, azurite.account_url, max_single_put_size=256 * 1024, block_size=128 * 1024)
    url = parse_url(_url(container, "staged/stream.bin"))
    data = bytes(range(256)) * 4096  # 1 MiB
    driver_for(url, config).upload_stream(io.BufferedReader(io.BytesIO(data)), url)
    blob = azurite.service().get_blob_client(container, url.key)
    assert len(blob.get_block_list("committed")[0]) == 8
    assert blob.download_blob().readall() == data


def test_wrong_key_is_permission_denied_once_and_never_shown(
    proxy: CountingProxy, container: str, conf_folder: Path
) -> None:
    config = _conf(conf_folder, f"http://{proxy.netloc}/{ACCOUNT}", key=WRONG_KEY)
    url = parse_url(_url(container, "x.bin"))
    proxy.reset()
    with pytest.raises(PermissionDeniedError) as raised:
        driver_for(url, config).open_read(url)
    message = str(raised.value)
    assert WRONG_KEY not in message and KEY not in message
    assert "account key of account 'devstoreaccount1' is wrong or expired" in message
    assert str(url) in message
    assert proxy.methods() == ["GET"]  # a 403 is never retried


def test_missing_container_names_it(azurite: Azurite, conf_folder: Path) -> None:
    config = _conf(conf_folder, azurite.account_url)
    url = parse_url(_url("no-such-container", "x.bin"))
    with pytest.raises(ObjectNotFoundError, match="the container 'no-such-container' does not exist"):
        driver_for(url, config).stat(url)


def test_unreachable_endpoint_is_a_clear_user_error(conf_folder: Path) -> None:
    config = _conf(conf_folder, f"http://127.0.0.1:{free_port()}/{ACCOUNT}", max_retries=0, connect_timeout=5)
    url = parse_url(_url("c", "x.bin"))
    with pytest.raises(AzureEndpointError) as raised:
        driver_for(url, config).stat(url)
    assert isinstance(raised.value, UserError) and isinstance(raised.value, TransientStorageError)
    assert "cannot be reached" in str(raised.value) and KEY not in str(raised.value)


class _Failing(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen: list[str] = []

    def log_message(self, format: str, *args: object) -> None:
        return

    def do_HEAD(self) -> None:
        type(self).seen.append(self.command)
        self.send_response(503)
        self.send_header("x-ms-error-code", "ServerBusy")
        self.send_header("Retry-After", "0")
        self.send_header("Content-Length", "0")
        self.end_headers()


def test_server_errors_are_transient_and_retried_as_configured(conf_folder: Path) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Failing)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        _Failing.seen = []
        config = _conf(conf_folder, f"http://127.0.0.1:{server.server_address[1]}/{ACCOUNT}", max_retries=1)
        url = parse_url(_url("c", "x.bin"))
        with pytest.raises(TransientStorageError, match="answered 503 ServerBusy"):
            driver_for(url, config).stat(url)
        assert _Failing.seen == ["HEAD", "HEAD"]  # the SDK's one retry, as configured
    finally:
        server.shutdown()
        server.server_close()


def test_presigned_get_and_put_work_without_credentials(
    azurite: Azurite, container: str, conf_folder: Path
) -> None:
    config = _conf(conf_folder, azurite.account_url)
    url = parse_url(_url(container, "shared/report.txt"))
    driver = driver_for(url, config)
    put = driver.presign(url, method="put", expires=120)
    request = urllib.request.Request(
        put, data=b"report", method="PUT", headers={"x-ms-blob-type": "BlockBlob"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 201
    get = driver.presign(url)
    assert KEY not in get and "sig=" in get
    with urllib.request.urlopen(get, timeout=30) as response:
        assert response.read() == b"report"
    with pytest.raises(UnsupportedOperationError, match="get or put"):
        driver.presign(url, method="delete")


def test_sas_token_credentials(azurite: Azurite, container: str, conf_folder: Path) -> None:
    from azure.storage.blob import AccountSasPermissions, ResourceTypes, generate_account_sas

    sas = generate_account_sas(
        ACCOUNT,
        KEY,
        resource_types=ResourceTypes(service=True, container=True, object=True),
        permission=AccountSasPermissions(
            read=True, write=True, delete=True, list=True, add=True, create=True
        ),
        expiry=dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1),
    )
    config = load(
        containers_conf(
            entry(
                account_name=ACCOUNT, container_name=container, sas_token=sas, account_url=azurite.account_url
            )
        ),
        conf_folder,
    )
    base = parse_url(_url(container, "sas/"))
    driver = driver_for(base, config)
    driver.upload_stream(io.BytesIO(b"via sas"), base.join("a.txt"))
    driver.copy(base.join("a.txt"), base.join("b.txt"))  # server-side: the source URL carries the SAS
    with driver.open_read(base.join("b.txt")) as stream:
        assert stream.read() == b"via sas"
    assert {info.name for info in driver.list(base)} == {"a.txt", "b.txt"}
    with pytest.raises(UnsupportedOperationError, match="SAS token"):
        driver.presign(base.join("a.txt"))
    assert driver.delete_folder(base) == 2


def test_clients_are_shared_per_credentials_and_endpoint(azurite: Azurite, conf_folder: Path) -> None:
    one, two = azurite.new_container("share"), azurite.new_container("share")
    config = _conf(conf_folder, azurite.account_url)
    before = len(CLIENTS)
    for name in (one, two):
        url = parse_url(_url(name, "x.txt"))
        driver_for(url, config).upload_stream(io.BytesIO(b"x"), url)
    assert len(CLIENTS) == before + 1
    other = load(
        containers_conf(
            entry(account_name=ACCOUNT, account_key=KEY, account_url=azurite.account_url),
            entry(account_name=ACCOUNT, container_name=two, connection_string=azurite.connection_string),
        ),
        conf_folder,
    )
    for name in (one, two):
        url = parse_url(_url(name, "y.txt"))
        driver_for(url, other).upload_stream(io.BytesIO(b"y"), url)
    assert len(CLIENTS) == before + 2  # the connection-string entry's client is its own


def test_path_style_url_and_environment_only(
    azurite: Azurite, container: str, conf_folder: Path, monkeypatch
) -> None:
    """ClearML's AZURE_STORAGE_ACCOUNT / AZURE_STORAGE_KEY with Azurite's own URL form, no clearml.conf."""
    monkeypatch.setenv("AZURE_STORAGE_ACCOUNT", ACCOUNT)
    monkeypatch.setenv("AZURE_STORAGE_KEY", KEY)
    url = parse_url(f"azure://{azurite.netloc}/{ACCOUNT}/{container}/path-style/x.txt")
    driver = driver_for(url, load("", conf_folder))
    driver.upload_stream(io.BytesIO(b"path style"), url)
    assert (
        azurite.service().get_blob_client(container, "path-style/x.txt").download_blob().readall()
        == b"path style"
    )


def test_timeouts_reach_the_client(azurite: Azurite, container: str, conf_folder: Path) -> None:
    config = _conf(conf_folder, azurite.account_url, timeout=42, connect_timeout=7)
    url = parse_url(_url(container, "t.txt"))
    driver = driver_for(url, config)
    service = driver.target(url).service
    transport = service._pipeline._transport  # what requests will get as (connect, read) timeouts
    assert (transport.connection_config.timeout, transport.connection_config.read_timeout) == (7, 42)


def test_default_credential_that_finds_nothing_says_what_to_configure(
    azurite: Azurite, container: str, conf_folder: Path, monkeypatch
) -> None:
    """azure-identity is installed and answers last; on a machine with no identity its refusal is
    a MissingCredentialsError. Its managed-identity source is pointed at a closed loopback port."""
    monkeypatch.setenv("IDENTITY_ENDPOINT", f"http://127.0.0.1:{free_port()}/msi/token")
    monkeypatch.setenv("IDENTITY_HEADER", "test")
    monkeypatch.setenv("PATH", "/nonexistent")  # no az / azd / pwsh to ask
    # azure-storage-blob sends tokens over https only (Azurite's plain http is refused, clearly)
    plain = load(containers_conf(entry(account_name=ACCOUNT, account_url=azurite.account_url)), conf_folder)
    url = parse_url(_url(container, "x.bin"))
    with pytest.raises(UserError, match="Token credential is only supported with HTTPS"):
        driver_for(url, plain).stat(url)
    # over https the credential is asked first, before any connection to the endpoint
    closed = f"https://127.0.0.1:{free_port()}/{ACCOUNT}"
    config = load(
        containers_conf(entry(account_name=ACCOUNT, account_url=closed), max_retries=0), conf_folder
    )
    driver = driver_for(url, config)
    assert driver.target(url).auth == "default_credential"
    with pytest.raises(UserError) as raised:
        driver.stat(url)
    assert "DefaultAzureCredential found no usable credentials" in str(raised.value)
    assert "AZURE_STORAGE_CONNECTION_STRING" in str(raised.value)
