"""StorageManager end to end: local files, the HTTP file server, the cache, archives, processes."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import tarfile
import threading
import time
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from clearml_core import StorageManager
from clearml_core.storage.archive import UnsafeArchiveError
from clearml_core.storage.cache import CACHE_FOLDER
from clearml_core.storage.errors import ObjectNotFoundError, StorageError
from tests.storage.fileserver import serve


@pytest.fixture
def cache_dir(tmp_path, monkeypatch) -> Path:
    """The cache's own folder (under the base that CLEARML_CACHE_DIR names)."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("CLEARML_CACHE_DIR", str(folder))
    return folder / CACHE_FOLDER


@pytest.fixture
def server(tmp_path):
    with serve(tmp_path / "served") as srv:
        yield srv


def _gets(server, path: str) -> int:
    return sum(1 for method, p, _range in server.requests if method == "GET" and p == path)


def _put(server, name: str, data: bytes) -> str:
    target = server.root / name
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    return server.url + name


# -- get_local_copy --------------------------------------------------------------------------


def test_http_object_is_downloaded_once_into_the_cache(server, cache_dir):
    url = _put(server, "models/weights v1.bin", os.urandom(300_000))
    path = StorageManager.get_local_copy(url)
    assert path is not None and path.endswith(".weights v1.bin")
    assert Path(path).parent == cache_dir / "global"
    assert Path(path).read_bytes() == (server.root / "models/weights v1.bin").read_bytes()
    assert StorageManager.get_local_copy(url) == path
    assert _gets(server, "/models/weights%20v1.bin") == 1


def test_cache_contexts_and_force_download(server, cache_dir):
    url = _put(server, "a.txt", b"v1")
    first = StorageManager.get_local_copy(url, cache_context="exp-1")
    assert Path(first).parent.name == "exp-1"
    (server.root / "a.txt").write_bytes(b"v2")
    assert Path(StorageManager.get_local_copy(url, cache_context="exp-1")).read_bytes() == b"v1"
    assert (
        Path(StorageManager.get_local_copy(url, cache_context="exp-1", force_download=True)).read_bytes()
        == b"v2"
    )
    assert _gets(server, "/a.txt") == 2


def test_local_files_are_used_in_place(tmp_path, cache_dir):
    local = tmp_path / "data.csv"
    local.write_text("a,b")
    assert StorageManager.get_local_copy(str(local)) == str(local)
    assert StorageManager.get_local_copy(f"file://{local}") == str(local)
    assert not cache_dir.exists()
    assert StorageManager.get_local_copy(str(tmp_path / "missing.csv")) is None


def test_direct_access_off_copies_local_files_into_the_cache(tmp_path, cache_dir, clearml_conf):
    clearml_conf.write_text("sdk.storage.direct_access: []\n")
    local = tmp_path / "data.csv"
    local.write_text("a,b")
    path = StorageManager.get_local_copy(str(local))
    assert Path(path).parent == cache_dir / "global" and Path(path).read_text() == "a,b"


def test_direct_access_by_content_type(tmp_path, cache_dir, clearml_conf):
    clearml_conf.write_text('sdk.storage.direct_access: [{ url: "file://*", content_type: "text/*" }]\n')
    text = tmp_path / "notes.txt"
    text.write_text("in place")
    blob = tmp_path / "weights.bin"
    blob.write_bytes(b"\0\1")
    assert StorageManager.get_local_copy(str(text)) == str(text)
    assert Path(StorageManager.get_local_copy(str(blob))).parent == cache_dir / "global"


def test_path_substitution_maps_a_remote_prefix_to_local_files(tmp_path, cache_dir, clearml_conf, server):
    mirror = tmp_path / "mirror"
    (mirror / "sub").mkdir(parents=True)
    (mirror / "sub" / "f.txt").write_text("local mirror")
    clearml_conf.write_text(
        f'sdk.storage.path_substitution: [{{ registered_prefix: "{server.url}data", local_prefix: "file://{mirror}" }}]\n'
    )
    assert StorageManager.get_local_copy(f"{server.url}data/sub/f.txt") == str(mirror / "sub" / "f.txt")
    # on a segment boundary only: data-old is not data
    _put(server, "data-old/f.txt", b"served")
    assert Path(StorageManager.get_local_copy(f"{server.url}data-old/f.txt")).read_bytes() == b"served"


def test_missing_object_gives_none_and_logs_why(server, cache_dir, caplog):
    caplog.set_level(logging.ERROR)
    assert StorageManager.get_local_copy(server.url + "nope.bin") is None
    assert "nope.bin" in caplog.text and "404" in caplog.text
    assert list((cache_dir / "global").glob("*nope*")) == []


def test_empty_object_is_fine_when_the_server_says_it_is_empty(server, cache_dir):
    url = _put(server, "empty.txt", b"")
    path = StorageManager.get_local_copy(url)
    assert path is not None and Path(path).stat().st_size == 0


# -- archives --------------------------------------------------------------------------------


def _zip_bytes(tmp_path: Path, entries: dict[str, bytes]) -> bytes:
    path = tmp_path / "build.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    data = path.read_bytes()
    path.unlink()
    return data


def test_archives_are_extracted_once_and_reused(server, cache_dir, tmp_path):
    url = _put(server, "ds.zip", _zip_bytes(tmp_path, {"ds/x.txt": b"x", "ds/y/z.txt": b"z"}))
    folder = Path(StorageManager.get_local_copy(url))
    assert folder.is_dir() and folder.name.endswith(".ds.zip_artifacts_archive")
    assert (folder / "ds/y/z.txt").read_bytes() == b"z"
    (folder / "marker").touch()
    assert StorageManager.get_local_copy(url) == str(folder)
    assert (folder / "marker").exists()  # reused, not extracted again
    named = StorageManager.get_local_copy(url, name="other")
    assert named != str(folder) and (Path(named) / "ds/x.txt").exists()
    plain = StorageManager.get_local_copy(url, extract_archive=False)
    assert plain.endswith(".ds.zip") and Path(plain).is_file()
    assert _gets(server, "/ds.zip") == 1


def test_tgz_over_http(server, cache_dir, tmp_path):
    source = tmp_path / "t"
    (source / "inner").mkdir(parents=True)
    (source / "inner" / "f.txt").write_text("tgz")
    archive = server.root / "a.tgz"
    archive.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(source / "inner", arcname="inner")
    folder = Path(StorageManager.get_local_copy(server.url + "a.tgz"))
    assert (folder / "inner" / "f.txt").read_text() == "tgz"


def test_local_archives_are_extracted_into_the_cache(tmp_path, cache_dir):
    archive = tmp_path / "local.zip"
    archive.write_bytes(_zip_bytes(tmp_path, {"a.txt": b"one"}))
    folder = Path(StorageManager.get_local_copy(str(archive)))
    assert folder.parent == cache_dir / "global" and (folder / "a.txt").read_bytes() == b"one"
    assert StorageManager.get_local_copy(str(archive)) == str(folder)
    # a changed archive is a new extraction
    archive.write_bytes(_zip_bytes(tmp_path, {"a.txt": b"two"}))
    os.utime(archive, (time.time() + 5, time.time() + 5))
    again = Path(StorageManager.get_local_copy(str(archive)))
    assert again != folder and (again / "a.txt").read_bytes() == b"two"


def test_unsafe_archive_raises_and_leaves_nothing(server, cache_dir, tmp_path):
    bad = tmp_path / "bad.tar.gz"
    with tarfile.open(bad, "w:gz") as tar:
        info = tarfile.TarInfo("../../escape.txt")
        info.size = 4
        import io

        tar.addfile(info, io.BytesIO(b"evil"))
    url = _put(server, "bad.tar.gz", bad.read_bytes())
    with pytest.raises(UnsafeArchiveError, match="escape.txt"):
        StorageManager.get_local_copy(url)
    assert not [p for p in (cache_dir / "global").iterdir() if p.is_dir() and p.name != ".locks"]


# -- one download for many processes, kill -9 --------------------------------------------------

_GET_SCRIPT = (
    "import sys\nfrom clearml_core import StorageManager\nprint(StorageManager.get_local_copy(sys.argv[1]))\n"
)


def test_eight_processes_one_request(server, cache_dir):
    url = _put(server, "shared.bin", os.urandom(5 * 1024 * 1024))
    procs = [
        subprocess.Popen([sys.executable, "-c", _GET_SCRIPT, url], stdout=subprocess.PIPE, text=True)
        for _ in range(8)
    ]
    paths = {proc.communicate(timeout=120)[0].strip() for proc in procs}
    assert [p.returncode for p in procs] == [0] * 8
    assert len(paths) == 1
    assert Path(paths.pop()).read_bytes() == (server.root / "shared.bin").read_bytes()
    assert _gets(server, "/shared.bin") == 1


class _SlowServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, data: bytes) -> None:
        super().__init__(("127.0.0.1", 0), _SlowHandler)
        self.data = data
        self.sent = 0


class _SlowHandler(BaseHTTPRequestHandler):
    server: _SlowServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_HEAD(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.server.data)))
        self.end_headers()

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.server.data)))
        self.end_headers()
        try:
            for start in range(0, len(self.server.data), 32 * 1024):
                self.wfile.write(self.server.data[start : start + 32 * 1024])
                self.wfile.flush()
                self.server.sent += 32 * 1024
                time.sleep(0.05)
        except OSError:
            pass


def test_get_local_copy_killed_mid_download_leaves_no_entry(cache_dir):
    data = os.urandom(1024 * 1024)
    server = _SlowServer(data)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/slow.bin"
    try:
        victim = subprocess.Popen([sys.executable, "-c", _GET_SCRIPT, url], stdout=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 30
        while server.sent < 256 * 1024 and time.monotonic() < deadline:
            time.sleep(0.01)
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=30)
        folder = cache_dir / "global"
        complete = [
            p for p in folder.iterdir() if p.name.endswith(".slow.bin") and not p.name.startswith(".")
        ]
        assert complete == []  # only a partial file, never an entry
        server.data = data[:4096]  # the next call is quick
        path = StorageManager.get_local_copy(url)
        assert Path(path).read_bytes() == data[:4096]
        assert not [p for p in folder.iterdir() if p.name.startswith(".partial.")]
    finally:
        server.shutdown()
        server.server_close()


# -- the other ClearML calls ------------------------------------------------------------------


def test_upload_and_download_file_over_http(server, cache_dir, tmp_path):
    local = tmp_path / "report.json"
    local.write_text('{"ok": true}')
    url = server.url + "runs/1/report.json"
    assert StorageManager.upload_file(str(local), url) == url
    assert (server.root / "runs/1/report.json").read_text() == '{"ok": true}'
    target = StorageManager.download_file(url, str(tmp_path / "down"))
    assert target == str(tmp_path / "down" / "runs/1/report.json")
    (server.root / "runs/1/report.json").write_text("changed")
    assert Path(StorageManager.download_file(url, str(tmp_path / "down"))).read_text() == '{"ok": true}'
    assert (
        Path(StorageManager.download_file(url, str(tmp_path / "down"), overwrite=True)).read_text()
        == "changed"
    )
    assert (
        StorageManager.download_file(server.url + "missing", str(tmp_path / "down"), silence_errors=True)
        is None
    )


def test_background_upload(server, tmp_path):
    local = tmp_path / "bg.txt"
    local.write_text("later")
    url = server.url + "bg/bg.txt"
    assert StorageManager.upload_file(str(local), url, wait_for_upload=False) == url
    from clearml_core.storage.manager import _background

    _background().submit(lambda: None).result(timeout=30)
    deadline = time.monotonic() + 30
    while not (server.root / "bg/bg.txt").exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert (server.root / "bg/bg.txt").read_text() == "later"


def test_upload_file_missing_source_raises(server, tmp_path):
    with pytest.raises(ObjectNotFoundError, match="no such file"):
        StorageManager.upload_file(str(tmp_path / "nope"), server.url + "x")


def test_upload_folder_to_http_and_download_folder_locally(server, tmp_path):
    source = tmp_path / "out"
    (source / "sub").mkdir(parents=True)
    (source / "a.txt").write_text("a")
    (source / "sub" / "b.txt").write_text("b")
    StorageManager.upload_folder(str(source), server.url + "artifacts/")
    assert (server.root / "artifacts/sub/b.txt").read_text() == "b"
    folder = StorageManager.download_folder(str(source), str(tmp_path / "copy"), match_wildcard="*b.txt")
    found = sorted(p.relative_to(folder).as_posix() for p in Path(folder).rglob("*") if p.is_file())
    assert found == [str(source / "sub" / "b.txt").lstrip("/")]


def test_exists_size_metadata_and_list(tmp_path, server):
    root = tmp_path / "store"
    (root / "folder_a").mkdir(parents=True)
    (root / "folder_a" / "x.txt").write_text("12345")
    (root / "folder_b.txt").write_text("1")
    (root / "other.txt").write_text("1")
    assert StorageManager.exists_file(str(root / "folder_a" / "x.txt"))
    assert not StorageManager.exists_file(str(root / "folder_a"))
    assert not StorageManager.exists_file(str(root / "folder_a") + "/")
    assert not StorageManager.exists_file(str(root / "nope"))
    assert StorageManager.get_file_size_bytes(str(root / "folder_a" / "x.txt")) == 5
    assert StorageManager.get_file_size_bytes(str(root / "nope"), silence_errors=True) is None
    # a local URL names a folder, as in ClearML: no prefixes, no siblings
    assert StorageManager.list(str(root / "folder_")) is None
    assert StorageManager.list(str(root / "folder_a")) == ["x.txt"]
    assert StorageManager.list(str(root) + "/", return_full_path=True) == [
        str(root / "folder_a" / "x.txt"),
        str(root / "folder_b.txt"),
        str(root / "other.txt"),
    ]
    listed = StorageManager.list(str(root / "folder_a") + "/", with_metadata=True)
    assert listed[0]["name"] == "x.txt" and listed[0]["size"] == 5
    meta = StorageManager.get_metadata(str(root / "folder_a" / "x.txt"))
    assert meta["size"] == 5 and meta["name"] == str(root / "folder_a" / "x.txt")
    assert StorageManager.get_metadata(str(root / "nope")) is None
    # plain HTTP cannot list: None, as in ClearML
    _put(server, "h.txt", b"123")
    assert StorageManager.list(server.url) is None
    assert StorageManager.exists_file(server.url + "h.txt")
    assert StorageManager.get_file_size_bytes(server.url + "h.txt") == 3


def test_set_cache_file_limit(cache_dir):
    assert StorageManager.set_cache_file_limit(300) == 300
    assert StorageManager.set_cache_file_limit(10) == 300
    assert StorageManager.set_cache_file_limit(150, cache_context="other") == 150
    # what ClearML 2.x returns (tests/storage/test_clearml_parity.py compares with the package)
    assert StorageManager.set_cache_file_limit(7, cache_context="new") == 7  # a new context: as given
    assert StorageManager.set_cache_file_limit(3, cache_context="new") == 7  # then it only grows
    assert StorageManager.set_cache_file_limit(0, cache_context="zero") == 100  # 0: the default
    StorageManager.get_local_copy(str(Path(__file__)), cache_context="used")
    assert StorageManager.set_cache_file_limit(4, cache_context="used") == 100  # used: the default first
    with pytest.raises(ValueError, match="0 or more"):
        StorageManager.set_cache_file_limit(-1)


def test_cache_file_limit_evicts_oldest(server, cache_dir):
    urls = [_put(server, f"f{i}.bin", bytes([i]) * 10) for i in range(4)]
    from clearml_core.storage.cache import get_cache

    cache = get_cache()
    cache._file_limits["global"] = 3
    paths = []
    for url in urls:
        paths.append(StorageManager.get_local_copy(url))
        time.sleep(0.01)
    assert [Path(p).exists() for p in paths] == [False, True, True, True]


# -- the modern API -------------------------------------------------------------------------


def test_open_reads_and_writes(server, tmp_path):
    with StorageManager.open(server.url + "notes/a.txt", "w") as out:
        out.write("héllo")
    assert (server.root / "notes/a.txt").read_text(encoding="utf-8") == "héllo"
    with StorageManager.open(server.url + "notes/a.txt", "r") as stream:
        assert stream.read() == "héllo"
    with StorageManager.open(str(tmp_path / "b.bin"), "wb") as out:
        out.write(b"\x00\x01")
    assert (tmp_path / "b.bin").read_bytes() == b"\x00\x01"
    with pytest.raises(RuntimeError), StorageManager.open(str(tmp_path / "c.bin"), "wb") as out:
        out.write(b"half")
        raise RuntimeError("stop")
    assert not (tmp_path / "c.bin").exists()
    with pytest.raises(ValueError, match="mode"):
        StorageManager.open(str(tmp_path / "b.bin"), "a")


def test_copy_single_and_recursive_between_backends(server, tmp_path):
    source = tmp_path / "src"
    (source / "d").mkdir(parents=True)
    (source / "one.txt").write_text("1")
    (source / "d" / "two.txt").write_text("2")
    report = StorageManager.copy(str(source), server.url + "dst/", recursive=True, progress=False)
    assert len(report.done) == 2 and report.bytes == 2
    assert (server.root / "dst/d/two.txt").read_text() == "2"
    StorageManager.copy(server.url + "dst/d/two.txt", str(tmp_path / "back") + "/")
    assert (tmp_path / "back" / "two.txt").read_text() == "2"
    StorageManager.copy(server.url + "dst/one.txt", server.url + "dst/copy.txt")
    assert (server.root / "dst/copy.txt").read_text() == "1"
    with pytest.raises(StorageError, match="recursive"):
        StorageManager.copy(str(source) + "/", str(tmp_path / "x"))
    with pytest.raises(ObjectNotFoundError):
        StorageManager.copy(str(tmp_path / "missing"), str(tmp_path / "x"), recursive=True)


def test_delete_and_ls(tmp_path):
    root = tmp_path / "store"
    (root / "d").mkdir(parents=True)
    (root / "a.txt").write_text("a")
    (root / "d" / "b.txt").write_text("b")
    names = [info.name for info in StorageManager.ls(str(root))]
    assert names == ["a.txt", "d"]
    assert [info.name for info in StorageManager.ls(str(root), recursive=True)] == ["a.txt", "b.txt"]
    assert StorageManager.delete(str(root / "a.txt")) == 1
    assert StorageManager.delete(str(root), recursive=True) == 1
    with pytest.raises(ObjectNotFoundError):
        StorageManager.ls(str(root))
