"""The S3 driver against moto: requests per object, client reuse, upload arguments, presigned URLs,
errors that say what to do, and AWS / MLflow environment variables."""

from __future__ import annotations

import io
import json
import threading
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from clearml_core_storage_s3.driver import CLIENTS
from clearml_core_storage_s3.errors import S3EndpointError

from clearml_core.config import Config
from clearml_core.errors import ConfigError, UserError
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
from plugins.storage_s3.tests.support import KEY, SECRET, MotoServer, endpoint_conf, load


@pytest.fixture(scope="module")
def bucket(moto: MotoServer) -> str:
    return moto.new_bucket("drv")


@pytest.fixture
def config(moto: MotoServer, conf_folder: Path) -> Config:
    return load(endpoint_conf(moto), conf_folder)


@pytest.fixture
def proxy(moto: MotoServer) -> Iterator[CountingProxy]:
    with counting_proxy(moto.port) as running:
        yield running


def put(config: Config, url: str, data: bytes) -> None:
    parsed = parse_url(url)
    driver_for(parsed, config).upload_stream(io.BytesIO(data), parsed, size=len(data))


def get(config: Config, url: str) -> bytes:
    parsed = parse_url(url)
    with driver_for(parsed, config).open_read(parsed) as stream:
        return stream.read()


# -- requests per object, counted at the server -------------------------------------------------------


def test_one_request_per_small_object(
    proxy: CountingProxy, bucket: str, conf_folder: Path, tmp_path: Path
) -> None:
    config = load(
        f'sdk.aws.s3.credentials: [ {{ host: "{proxy.netloc}", key: "{KEY}", secret: "{SECRET}", secure: false }} ]',
        conf_folder,
    )
    base = f"s3://{proxy.netloc}/{bucket}/count/"
    url = parse_url(base + "one.json")
    driver = driver_for(url, config)
    source = tmp_path / "one.json"
    source.write_bytes(b'{"a": 1}')

    proxy.reset()
    driver.upload_file(source, url)
    assert proxy.methods() == ["PUT"]

    proxy.reset()
    assert driver.download_file(url, tmp_path / "out.json") == 8
    assert proxy.methods() == ["GET"]
    assert (tmp_path / "out.json").read_bytes() == b'{"a": 1}'

    proxy.reset()
    with driver.open_read(url) as stream:
        assert stream.read() == b'{"a": 1}'
    assert proxy.methods() == ["GET"]

    proxy.reset()
    driver.upload_stream(io.BytesIO(b"streamed"), parse_url(base + "s.bin"))  # size unknown
    assert proxy.methods() == ["PUT"]

    proxy.reset()
    with pytest.raises(ObjectNotFoundError):
        driver.download_file(parse_url(base + "missing.bin"), tmp_path / "missing.bin")
    assert proxy.methods() == ["GET"]  # a 404 is never retried


def test_folder_transfers_through_the_storage_manager(
    proxy: CountingProxy, bucket: str, tmp_path: Path, monkeypatch, moto: MotoServer
) -> None:
    from clearml_core.settings import reset_config
    from clearml_core.storage.manager import StorageManager

    conf = tmp_path / "clearml.conf"
    conf.write_text(
        f'sdk.aws.s3.credentials: [ {{ host: "{proxy.netloc}", key: "{KEY}", secret: "{SECRET}", secure: false }} ]'
    )
    monkeypatch.setenv("CLEARML_CONFIG_FILE", str(conf))
    reset_config()
    source = tmp_path / "src"
    names = ["a.txt", "b.bin", "sub/c.json", "sub/deeper/d.csv", "e f.txt"]
    for index, name in enumerate(names):
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        (source / name).write_bytes(bytes([index]) * (100 + index))

    proxy.reset()
    StorageManager.upload_folder(str(source), f"s3://{proxy.netloc}/{bucket}/folder/")  # trailing slash
    assert proxy.methods() == ["PUT"] * len(names)
    keys = {o["Key"] for o in moto.client().list_objects_v2(Bucket=bucket, Prefix="folder")["Contents"]}
    assert keys == {f"folder/{name}" for name in names}  # never folder//a.txt

    proxy.reset()
    target = tmp_path / "dst"
    StorageManager.download_folder(f"s3://{proxy.netloc}/{bucket}/folder/", str(target))
    methods = proxy.methods()
    assert methods.count("GET") == len(names) + 1  # one listing page, one GET per object
    assert "HEAD" not in methods
    for name in names:  # as in ClearML, the object's key is kept under the local folder
        assert (target / "folder" / name).read_bytes() == (source / name).read_bytes()


def test_large_download_fetches_parts_without_a_head(
    proxy: CountingProxy, bucket: str, conf_folder: Path, tmp_path: Path
) -> None:
    part = 5 * 1024 * 1024
    config = load(
        f'sdk.aws.s3.credentials: [ {{ host: "{proxy.netloc}", key: "{KEY}", secret: "{SECRET}", secure: false }} ]\n'
        f"sdk.aws.boto3 {{ multipart_threshold: {part}, multipart_chunksize: {part} }}",
        conf_folder,
    )
    data = bytes(range(256)) * (part * 2 // 256 + 100)  # three parts
    url = parse_url(f"s3://{proxy.netloc}/{bucket}/large/three-parts.bin")
    put(config, str(url), data)
    proxy.reset()
    assert driver_for(url, config).download_file(url, tmp_path / "out.bin") == len(data)
    assert (tmp_path / "out.bin").read_bytes() == data
    assert proxy.methods() == ["GET", "GET", "GET"]
    assert not list(tmp_path.glob(".*clearml-part")), "a temporary part file was left behind"


def test_an_object_replaced_mid_download_fails_without_mixing(
    proxy: CountingProxy, moto: MotoServer, bucket: str, conf_folder: Path, tmp_path: Path
) -> None:
    part = 5 * 1024 * 1024
    config = load(
        f'sdk.aws.s3.credentials: [ {{ host: "{proxy.netloc}", key: "{KEY}", secret: "{SECRET}", secure: false }} ]\n'
        f"sdk.aws.boto3 {{ multipart_threshold: {part}, multipart_chunksize: {part} }}",
        conf_folder,
    )
    url = parse_url(f"s3://{proxy.netloc}/{bucket}/replaced/object.bin")
    put(config, str(url), b"a" * (part * 2))
    replaced = threading.Event()

    def replace_after_the_first_get(method: str, path: str, query: str) -> None:
        if (
            method == "GET"
            and path.endswith("/object.bin")
            and not replaced.is_set()
            and len(proxy.methods()) > 1
        ):
            moto.client().put_object(Bucket=bucket, Key=url.key, Body=b"b" * (part * 2))
            replaced.set()

    proxy.reset()
    proxy.before_forward = replace_after_the_first_get
    with pytest.raises(TransientStorageError, match="changed while it was downloading"):
        driver_for(url, config).download_file(url, tmp_path / "object.bin")
    assert replaced.is_set()
    assert not (tmp_path / "object.bin").exists()
    assert not list(tmp_path.glob(".*clearml-part")), "a temporary part file was left behind"


# -- clients -------------------------------------------------------------------------------------


def test_clients_are_reused_per_resolved_target(moto: MotoServer, conf_folder: Path) -> None:
    first, second = moto.new_bucket("reuse"), moto.new_bucket("reuse")
    other_key = "AKIAOTHERKEY00000001"
    config = load(
        f'sdk.aws.s3.credentials: [ {{ host: "{moto.netloc}", key: "{KEY}", secret: "{SECRET}", secure: false }},\n'
        f'  {{ host: "{moto.netloc}", bucket: "{second}", key: "{other_key}", secret: "other-secret", secure: false }} ]',
        conf_folder,
    )
    put(config, f"s3://{moto.netloc}/{first}/a", b"1")
    put(config, f"s3://{moto.netloc}/{first}/sub/b", b"2")
    assert len(CLIENTS) == 1
    put(config, f"s3://{moto.netloc}/{second}/a", b"3")  # same endpoint, its own keys: its own client
    assert len(CLIENTS) == 2
    assert get(config, f"s3://{moto.netloc}/{second}/a") == b"3"
    assert len(CLIENTS) == 2


def test_clients_are_built_once_under_concurrency(moto: MotoServer, bucket: str, config: Config) -> None:
    start = threading.Barrier(16)

    def upload(index: int) -> None:
        start.wait()
        put(config, f"s3://{moto.netloc}/{bucket}/threads/{index}", str(index).encode())

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(upload, range(16)))
    assert len(CLIENTS) == 1
    assert get(config, f"s3://{moto.netloc}/{bucket}/threads/7") == b"7"


# -- upload arguments ----------------------------------------------------------------------------------


def test_content_type_acl_and_encryption(
    moto: MotoServer, bucket: str, conf_folder: Path, tmp_path: Path
) -> None:
    config = load(
        endpoint_conf(moto, acl="public-read")
        + 'sdk.aws.s3.extra_args: { ServerSideEncryption: "AES256", StorageClass: "STANDARD_IA" }',
        conf_folder,
    )
    source = tmp_path / "model.json"
    source.write_text("{}")
    url = parse_url(f"s3://{moto.netloc}/{bucket}/args/model.json")
    driver_for(url, config).upload_file(source, url)
    client = moto.client()
    head = client.head_object(Bucket=bucket, Key=url.key)
    assert head["ContentType"] == "application/json"
    assert head["ServerSideEncryption"] == "AES256"
    assert head["StorageClass"] == "STANDARD_IA"
    grants = client.get_object_acl(Bucket=bucket, Key=url.key)["Grants"]
    assert any(g["Grantee"].get("URI", "").endswith("AllUsers") and g["Permission"] == "READ" for g in grants)


def test_mlflow_upload_extra_args(moto: MotoServer, bucket: str, config: Config, monkeypatch) -> None:
    monkeypatch.setenv("MLFLOW_S3_UPLOAD_EXTRA_ARGS", json.dumps({"ServerSideEncryption": "AES256"}))
    url = f"s3://{moto.netloc}/{bucket}/mlflow-args/x.txt"
    put(config, url, b"x")
    assert (
        moto.client().head_object(Bucket=bucket, Key="mlflow-args/x.txt")["ServerSideEncryption"] == "AES256"
    )


def test_mlflow_upload_extra_args_must_be_json(
    moto: MotoServer, bucket: str, config: Config, monkeypatch
) -> None:
    monkeypatch.setenv("MLFLOW_S3_UPLOAD_EXTRA_ARGS", "ServerSideEncryption=AES256")
    with pytest.raises(ConfigError, match="MLFLOW_S3_UPLOAD_EXTRA_ARGS"):
        put(config, f"s3://{moto.netloc}/{bucket}/bad-args/x.txt", b"x")


def test_unknown_extra_args_are_a_config_error(moto: MotoServer, bucket: str, conf_folder: Path) -> None:
    config = load(endpoint_conf(moto) + "sdk.aws.s3.extra_args: { NoSuchArgument: 1 }", conf_folder)
    with pytest.raises(ConfigError, match="extra_args"):
        put(config, f"s3://{moto.netloc}/{bucket}/bad-args/y.txt", b"y")


def test_multipart_false_uploads_in_one_request(
    moto: MotoServer, bucket: str, conf_folder: Path, tmp_path: Path
) -> None:
    part = 5 * 1024 * 1024
    config = load(
        endpoint_conf(moto, multipart=False) + f"sdk.aws.boto3.multipart_threshold: {part}", conf_folder
    )
    source = tmp_path / "big.bin"
    source.write_bytes(b"z" * (part + 10))
    url = parse_url(f"s3://{moto.netloc}/{bucket}/single/big.bin")
    driver_for(url, config).upload_file(source, url)
    assert "-" not in moto.client().head_object(Bucket=bucket, Key=url.key)["ETag"]


# -- presigned URLs --------------------------------------------------------------------------------


def test_presigned_get_and_put_work_without_credentials(
    moto: MotoServer, bucket: str, config: Config
) -> None:
    url = parse_url(f"s3://{moto.netloc}/{bucket}/presign/file.bin")
    driver = driver_for(url, config)
    upload = driver.presign(url, method="put", expires=300)
    assert "X-Amz-Signature=" in upload and SECRET not in upload
    request = urllib.request.Request(
        upload,
        data=b"through a presigned PUT",
        method="PUT",
        headers={"Content-Type": "application/octet-stream"},
    )  # urllib would say form-urlencoded, which moto (not S3) reads as a form
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200
    assert get(config, str(url)) == b"through a presigned PUT"
    download = driver.presign(url, expires=60)
    with urllib.request.urlopen(download, timeout=30) as response:
        assert response.read() == b"through a presigned PUT"
    with pytest.raises(UnsupportedOperationError):
        driver.presign(url, method="delete")
    with pytest.raises(UnsupportedOperationError):
        driver.presign(url, expires=8 * 24 * 3600)


# -- errors ------------------------------------------------------------------------------------------


def test_missing_bucket_names_it(moto: MotoServer, config: Config) -> None:
    with pytest.raises(ObjectNotFoundError) as raised:
        put(config, f"s3://{moto.netloc}/no-such-bucket-here/x", b"x")
    assert "no-such-bucket-here" in str(raised.value)
    assert "does not exist" in str(raised.value)


def test_unreachable_endpoint_is_a_user_error(conf_folder: Path) -> None:
    port = free_port()
    config = load(
        f'sdk.aws.s3.credentials: [ {{ host: "127.0.0.1:{port}", key: "{KEY}", secret: "{SECRET}", secure: false }} ]\n'
        "sdk.aws.boto3 { max_attempts: 1, connect_timeout: 2 }",
        conf_folder,
    )
    with pytest.raises(S3EndpointError) as raised:
        get(config, f"s3://127.0.0.1:{port}/bucket/x")
    assert isinstance(raised.value, UserError)
    message = str(raised.value)
    assert f"http://127.0.0.1:{port}" in message and "cannot be reached" in message
    assert SECRET not in message


def test_tls_failure_is_a_user_error(moto: MotoServer, bucket: str, conf_folder: Path) -> None:
    # https to moto's plain-http port: the TLS handshake fails
    config = load(
        f'sdk.aws.s3.credentials: [ {{ host: "{moto.netloc}", key: "{KEY}", secret: "{SECRET}" }} ]\n'
        "sdk.aws.boto3 { max_attempts: 1 }",
        conf_folder,
    )
    with pytest.raises(S3EndpointError) as raised:
        get(config, f"s3://{moto.netloc}/{bucket}/x")
    message = str(raised.value)
    assert "TLS" in message and "verify" in message
    assert SECRET not in message


def test_server_errors_are_transient(bucket: str, conf_folder: Path) -> None:
    import http.server

    seen: list[str] = []

    class Busy(http.server.BaseHTTPRequestHandler):
        """An S3 endpoint that is always overloaded."""

        def log_message(self, *args) -> None:
            return

        def do_GET(self) -> None:
            seen.append(self.command)
            body = b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>"
            self.send_response(503)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Busy)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        netloc = f"127.0.0.1:{server.server_address[1]}"
        config = load(
            f'sdk.aws.s3.credentials: [ {{ host: "{netloc}", key: "{KEY}", secret: "{SECRET}", secure: false }} ]\n'
            "sdk.aws.boto3 { max_attempts: 2 }",
            conf_folder,
        )
        with pytest.raises(TransientStorageError) as raised:
            get(config, f"s3://{netloc}/{bucket}/x")
        assert "SlowDown" in str(raised.value)
        assert seen == ["GET", "GET"]  # botocore's own retry, as configured
    finally:
        server.shutdown()
        server.server_close()


# -- wrong and insufficient credentials, on a moto that checks them ------------------------------------


def test_wrong_secret_is_permission_denied_without_the_secret(moto_auth, conf_folder: Path) -> None:
    server, admin, _reader, bucket = moto_auth
    wrong = "definitely-not-the-secret-1234"
    config = load(
        f'sdk.aws.s3.credentials: [ {{ host: "{server.netloc}", key: "{admin[0]}", secret: "{wrong}", secure: false }} ]',
        conf_folder,
    )
    with pytest.raises(PermissionDeniedError) as raised:
        get(config, f"s3://{server.netloc}/{bucket}/readable.txt")
    message = str(raised.value)
    assert "SignatureDoesNotMatch" in message and "secret is wrong" in message
    assert "****" + admin[0][-4:] in message
    assert wrong not in message and admin[0] not in message and admin[1] not in message


def test_forbidden_is_not_retried(moto_auth, conf_folder: Path) -> None:
    server, _admin, reader, bucket = moto_auth
    with counting_proxy(server.port) as proxy:
        config = load(
            f'sdk.aws.s3.credentials: [ {{ host: "{proxy.netloc}", key: "{reader[0]}", secret: "{reader[1]}", secure: false }} ]',
            conf_folder,
        )
        assert get(config, f"s3://{proxy.netloc}/{bucket}/readable.txt") == b"public"
        proxy.reset()
        with pytest.raises(PermissionDeniedError) as raised:
            put(config, f"s3://{proxy.netloc}/{bucket}/not-allowed.txt", b"x")
        assert proxy.methods() == ["PUT"]
        assert "AccessDenied" in str(raised.value)
        assert reader[1] not in str(raised.value)


def test_a_public_bucket_is_read_without_signing(
    moto: MotoServer, proxy: CountingProxy, bucket: str, conf_folder: Path, monkeypatch
) -> None:
    from clearml_core_storage_s3.driver import S3Driver

    owner = moto.client()
    owner.put_object(Bucket=bucket, Key="public/data.csv", Body=b"a,b\n1,2\n")
    url = f"s3://{proxy.netloc}/{bucket}/public/data.csv"
    anonymous = f'sdk.aws.s3.credentials: [ {{ host: "{proxy.netloc}", bucket: "{bucket}", anonymous: true, secure: false }} ]'
    with pytest.raises(PermissionDeniedError, match=r"anonymous \(unsigned\) requests may not do this"):
        get(load(anonymous, conf_folder), url)  # the bucket is private: an unsigned request is refused
    owner.put_bucket_acl(Bucket=bucket, ACL="public-read")
    owner.put_object_acl(Bucket=bucket, Key="public/data.csv", ACL="public-read")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY)  # on the machine, and still not used
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    config = load(anonymous, conf_folder)
    proxy.reset()
    assert get(config, url) == b"a,b\n1,2\n"
    assert [
        info.url.path.rsplit("/", 1)[-1]
        for info in driver_for(parse_url(url), config).list(parse_url(url).parent)
    ] == ["data.csv"]
    assert proxy.requests and proxy.authorizations == [""] * len(proxy.requests)
    found = S3Driver.describe(parse_url(url), config)
    assert found["anonymous"] is True and found["access_key_id"] is None
    assert found["source"].endswith("(anonymous: requests are not signed)")


# -- the environment (AWS and MLflow variables) --------------------------------------------------------


def test_mlflow_style_environment_only(moto: MotoServer, bucket: str, conf_folder: Path, monkeypatch) -> None:
    monkeypatch.setenv("MLFLOW_S3_ENDPOINT_URL", moto.endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    config = load("", conf_folder)
    url = (
        f"s3://{bucket}/mlflow/artifact.txt"  # no host in the URL: the endpoint comes from MLflow's variable
    )
    put(config, url, b"artifact")
    assert get(config, url) == b"artifact"
    assert moto.client().get_object(Bucket=bucket, Key="mlflow/artifact.txt")["Body"].read() == b"artifact"


@pytest.mark.parametrize("variable", ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"])
def test_botocores_endpoint_variables(
    moto: MotoServer, bucket: str, conf_folder: Path, monkeypatch, variable: str
) -> None:
    from clearml_core_storage_s3.driver import S3Driver

    monkeypatch.setenv(variable, moto.endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    config = load("", conf_folder)
    url = f"s3://{bucket}/env/endpoint.txt"
    put(config, url, b"through the variable")
    assert get(config, url) == b"through the variable"
    found = S3Driver.describe(parse_url(url), config)
    assert (found["endpoint_url"], found["endpoint_source"]) == (moto.endpoint, f"env {variable}")
    if variable == "AWS_ENDPOINT_URL":  # the service's own variable wins over the global one
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://s3-only.example:9000")
        assert S3Driver.describe(parse_url(url), config)["endpoint_source"] == "env AWS_ENDPOINT_URL_S3"
    monkeypatch.setenv("MLFLOW_S3_ENDPOINT_URL", "http://mlflow.example:9000")  # MLflow's comes first
    assert S3Driver.describe(parse_url(url), config)["endpoint_source"] == "env MLFLOW_S3_ENDPOINT_URL"
    monkeypatch.delenv("MLFLOW_S3_ENDPOINT_URL")
    monkeypatch.setenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true")
    assert S3Driver.describe(parse_url(url), config)["endpoint_url"] is None


def test_session_token_region_and_ca_bundle_from_the_environment(monkeypatch, conf_folder: Path) -> None:
    from clearml_core_storage_s3.driver import S3Driver

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAENVIRONMENT00042")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "env-secret-value")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "env-session-token-value")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-3")
    monkeypatch.setenv("AWS_CA_BUNDLE", "/etc/company-ca.pem")
    found = S3Driver.describe(parse_url("s3://bucket/key"), load("", conf_folder))
    assert (found["resolver"], found["source"]) == ("s3-env", "env AWS_ACCESS_KEY_ID")
    assert found["region"] == "eu-west-3"
    assert found["verify"] == "/etc/company-ca.pem"
    assert found["access_key_id"] == "****0042"
    monkeypatch.setenv("MLFLOW_S3_IGNORE_TLS", "true")
    monkeypatch.delenv("AWS_CA_BUNDLE")
    assert S3Driver.describe(parse_url("s3://bucket/key"), load("", conf_folder))["verify"] is False


def test_aws_profile_from_the_environment(monkeypatch, clearml_home: Path, conf_folder: Path) -> None:
    from clearml_core_storage_s3.driver import S3Driver

    aws = clearml_home / ".aws"
    aws.mkdir()
    (aws / "credentials").write_text(
        "[team]\naws_access_key_id = AKIAPROFILE000000055\naws_secret_access_key = p\n"
    )
    (aws / "config").write_text("[profile team]\nregion = ca-central-1\n")
    monkeypatch.setenv("AWS_PROFILE", "team")
    found = S3Driver.describe(parse_url("s3://bucket/key"), load("", conf_folder))
    assert (found["resolver"], found["source"], found["profile"]) == ("s3-env", "env AWS_PROFILE", "team")
    assert found["region"] == "ca-central-1"


def test_botocore_s3_options_pass_through(moto: MotoServer, bucket: str, conf_folder: Path) -> None:
    config = load(
        endpoint_conf(moto)
        + 'sdk.aws.boto3 { addressing_style: "path", s3: { payload_signing_enabled: true } }',
        conf_folder,
    )
    url = f"s3://{moto.netloc}/{bucket}/options/x.txt"
    put(config, url, b"signed payload")
    assert get(config, url) == b"signed payload"
    client = next(iter(CLIENTS._clients.values()))
    assert client.meta.config.s3["payload_signing_enabled"] is True


def test_an_unknown_profile_is_a_config_error(moto: MotoServer, bucket: str, conf_folder: Path) -> None:
    config = load(
        f'sdk.aws.s3.credentials: [ {{ host: "{moto.netloc}", profile: "no-such-profile", secure: false }} ]',
        conf_folder,
    )
    with pytest.raises(ConfigError, match="no-such-profile"):
        put(config, f"s3://{moto.netloc}/{bucket}/profile/x.txt", b"x")
