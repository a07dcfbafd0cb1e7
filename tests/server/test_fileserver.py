"""The file server: what ClearML's SDK sends it, clearml-core's own HTTP backend, and bad paths."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from clearml_core import StorageManager
from clearml_core.server.fixed_users import FixedUser, user_id
from clearml_core.settings import reset_config
from clearml_core.storage.errors import PermissionDeniedError
from clearml_core.storage.resolution import driver, parse
from clearml_core.testing.clearml_server import ApiClient
from tests.server.support import LocalServer, local_server

BOUNDARY = "xYzZy"


def multipart(*parts: tuple[str, bytes], boundary: str = BOUNDARY) -> bytes:
    body = b""
    for name, content in parts:
        body += (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{name}"\r\n'
                "Content-Type: application/octet-stream\r\n\r\n"
            ).encode()
            + content
            + b"\r\n"
        )
    return body + f"--{boundary}--\r\n".encode()


def post(server: LocalServer, body: bytes, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    client = ApiClient(server.files_url)
    sent = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}", **(headers or {})}
    status, _headers, data = client.request("POST", "/", body, sent)
    client.close()
    return status, data


def every_file(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def use_server(clearml_conf: Path, server: LocalServer, *, credentials: bool = False) -> None:
    text = f'api {{ files_server: "{server.files_url}", api_server: "{server.api_url}"'
    if credentials:
        text += f', credentials {{ access_key: "{server.access_key}", secret_key: "{server.secret_key}" }}'
    clearml_conf.write_text(text + " }\n")
    reset_config()


def test_multipart_upload_download_with_ranges_and_delete(server: LocalServer) -> None:
    data = os.urandom(3 * 1024 * 1024 + 5)
    status, body = post(server, multipart(("proj/task.1/artifacts/a/blob.bin", data), ("notes/b.txt", b"b")))
    assert status == 200
    assert json.loads(body) == ["proj/task.1/artifacts/a/blob.bin", "notes/b.txt"]
    client = ApiClient(server.files_url)
    status, headers, got = client.request("GET", "/proj/task.1/artifacts/a/blob.bin")
    assert status == 200 and got == data and headers["accept-ranges"] == "bytes"
    status, headers, got = client.request(
        "GET", "/proj/task.1/artifacts/a/blob.bin", headers={"Range": "bytes=10-19"}
    )
    assert status == 206 and got == data[10:20] and headers["content-range"] == f"bytes 10-19/{len(data)}"
    assert client.request("DELETE", "/notes/b.txt")[0] == 200
    assert client.request("GET", "/notes/b.txt")[0] == 404
    assert every_file(server.ctx.upload_folder) == ["proj/task.1/artifacts/a/blob.bin"]


def test_clearml_cores_http_backend_uploads_and_downloads(
    server: LocalServer, clearml_conf: Path, tmp_path
) -> None:
    use_server(clearml_conf, server)
    local = tmp_path / "model.bin"
    local.write_bytes(b"weights" * 1000)
    remote = f"{server.files_url}/examples/task-1/models/model.bin"

    StorageManager.upload_file(str(local), remote)

    assert (server.ctx.upload_folder / "examples/task-1/models/model.bin").read_bytes() == local.read_bytes()
    assert Path(StorageManager.get_local_copy(remote)).read_bytes() == local.read_bytes()
    url = parse(remote)
    with driver(url).open_read(url, (7, 14)) as stream:
        assert stream.read() == b"weights"
    driver(url).delete(url)
    assert not driver(url).exists(url)


@pytest.mark.parametrize(
    "name", ["../escape.txt", "a/../../escape.txt", "/../../escape.txt", "..", "a/\x00b"]
)
def test_an_upload_outside_the_folder_is_refused_and_nothing_is_written(
    server: LocalServer, name: str
) -> None:
    status, body = post(server, multipart(("fine/first.txt", b"1"), (name, b"2")))
    assert status == 400
    assert b"leaves the file server's folder" in body
    assert every_file(server.ctx.upload_folder) == []
    assert not (server.ctx.upload_folder.parent / "escape.txt").exists()


@pytest.mark.parametrize("path", ["/../state.db", "/%2e%2e/state.db", "/a/%2E%2E/%2e%2e/state.db"])
def test_a_download_or_delete_outside_the_folder_is_refused(server: LocalServer, path: str) -> None:
    client = ApiClient(server.files_url)
    assert client.request("GET", path)[0] == 400
    assert client.request("DELETE", path)[0] == 400
    assert (server.ctx.upload_folder.parent / "state.db").exists()


def test_a_link_out_of_the_folder_is_not_followed(server: LocalServer, tmp_path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("not yours")
    (server.ctx.upload_folder / "link").symlink_to(outside)
    client = ApiClient(server.files_url)
    assert client.request("GET", "/link/secret.txt")[0] == 400
    assert post(server, multipart(("link/new.txt", b"x")))[0] == 400
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"]


def test_a_broken_multipart_body_stores_nothing(server: LocalServer) -> None:
    body = multipart(("a/one.txt", b"1"), ("b/two.txt", b"2"))[:-30]
    status, message = post(server, body)
    assert status == 400 and b"nothing was stored" in message
    assert every_file(server.ctx.upload_folder) == []


def test_an_upload_over_the_limit_is_413(tmp_path) -> None:
    with local_server(tmp_path / "server", max_upload_bytes=1000) as server:
        status, body = post(server, multipart(("big.bin", b"x" * 5000)))
        assert status == 413 and b"fileserver.upload.max_upload_size_mb" in body
        assert every_file(server.ctx.upload_folder) == []


@pytest.fixture
def locked_server(tmp_path):
    users = (
        FixedUser("jane", "a long password", "Jane", user_id("d1bd92a3b039400cbafc60a7a5b1e52b", "jane")),
    )
    with local_server(tmp_path / "locked", fixed_users_enabled=True, fixed_users=users) as server:
        yield server


def test_with_fixed_users_files_need_a_session_token(locked_server: LocalServer) -> None:
    (locked_server.ctx.upload_folder / "x.txt").write_text("x")
    client = ApiClient(locked_server.files_url)
    status, _headers, body = client.request("GET", "/x.txt")
    assert status == 401 and b"session token" in body
    assert post(locked_server, multipart(("y.txt", b"y")))[0] == 401
    token = locked_server.client().token
    assert client.request("GET", "/x.txt", headers={"Authorization": f"Bearer {token}"})[0] == 200
    cookie = {"Cookie": f"clearml_token_basic={token}"}
    assert client.request("GET", "/x.txt", headers=cookie)[0] == 200
    assert client.request("GET", "/x.txt", headers={"Authorization": "Bearer forged.token.here"})[0] == 401
    assert every_file(locked_server.ctx.upload_folder) == ["x.txt"]


def test_clearml_cores_http_backend_signs_in_when_the_file_server_asks(
    locked_server: LocalServer, clearml_conf: Path, tmp_path
) -> None:
    local = tmp_path / "data.csv"
    local.write_text("a,b\n1,2\n")
    remote = f"{locked_server.files_url}/datasets/data.csv"
    use_server(clearml_conf, locked_server)
    with pytest.raises(PermissionDeniedError, match="401"):
        StorageManager.upload_file(str(local), remote)

    use_server(clearml_conf, locked_server, credentials=True)
    StorageManager.upload_file(str(local), remote)
    assert Path(StorageManager.get_local_copy(remote)).read_text() == "a,b\n1,2\n"
