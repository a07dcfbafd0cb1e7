"""ClearML 2.x's StorageManager calls that need more than a cache or a copy: streams, progress
reports, the file server's address, local listings.

The expected answers are ClearML's own (``test_clearml_parity.py`` checks the local listings and
cache limits against the real package).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from clearml_core import StorageManager
from clearml_core.settings import reset_config
from clearml_core.storage import progress
from tests.storage.fileserver import serve

MB = 1024 * 1024


@pytest.fixture
def server(tmp_path):
    with serve(tmp_path / "served") as srv:
        yield srv


@pytest.fixture
def cache_dir(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("CLEARML_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture
def chunk_sizes():
    """The process-wide report chunk sizes, restored afterwards."""
    saved = dict(progress._overrides)
    yield
    progress._overrides.clear()
    progress._overrides.update(saved)


# -- get_stream ------------------------------------------------------------------------------


def test_get_stream_yields_the_bytes_in_chunks_and_caches_nothing(server, cache_dir, tmp_path) -> None:
    data = os.urandom(300_000)
    (server.root / "blob.bin").write_bytes(data)
    chunks = list(StorageManager.get_stream(server.url + "blob.bin", chunk_size=100_000) or [])
    assert b"".join(chunks) == data
    assert [len(c) for c in chunks] == [100_000, 100_000, 100_000]
    assert b"".join(StorageManager.get_stream(server.url + "blob.bin") or []) == data
    local = tmp_path / "local.bin"
    local.write_bytes(b"local bytes")
    assert list(StorageManager.get_stream(str(local), chunk_size=5) or []) == [b"local", b" byte", b"s"]
    assert not cache_dir.exists() or not any(
        p.is_file() for p in cache_dir.rglob("*") if ".locks" not in p.parts
    )


def test_get_stream_of_a_missing_object_is_none(server, tmp_path, caplog) -> None:
    assert StorageManager.get_stream(server.url + "missing.bin") is None
    assert StorageManager.get_stream(str(tmp_path / "missing.bin")) is None
    assert "could not stream" in caplog.text


# -- progress reports ------------------------------------------------------------------------


def _lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "clearml_core.storage.progress"]


def test_report_chunk_sizes_set_how_often_progress_is_logged(
    server, cache_dir, tmp_path, caplog, chunk_sizes
) -> None:
    caplog.set_level(logging.INFO, logger="clearml_core.storage.progress")
    (server.root / "big.bin").write_bytes(os.urandom(3 * MB + 1000))
    source = tmp_path / "up.bin"
    source.write_bytes(os.urandom(3 * MB))

    StorageManager.set_report_download_chunk_size(1)
    assert StorageManager.get_local_copy(server.url + "big.bin")
    downloads = _lines(caplog)
    assert len(downloads) == 4, downloads  # 1, 2 and 3 MB, and the end
    assert downloads[0].startswith("Downloading: 1.00MB") and downloads[0].endswith(
        f"from {server.url}big.bin"
    )
    assert downloads[-1].startswith("Downloading: 3.00MB")

    caplog.clear()
    StorageManager.set_report_upload_chunk_size(1)
    StorageManager.upload_file(str(source), server.url + "up.bin")
    uploads = _lines(caplog)
    assert len(uploads) == 3, uploads
    assert uploads[0].startswith("Uploading: 1.00MB / 3.00MB @ ") and uploads[0].endswith(
        f"to {server.url}up.bin"
    )

    caplog.clear()
    StorageManager.set_report_download_chunk_size(50)
    StorageManager.set_report_upload_chunk_size(50)
    assert StorageManager.download_file(server.url + "big.bin", str(tmp_path / "down"))
    StorageManager.upload_file(str(source), server.url + "again.bin")
    assert _lines(caplog) == []  # smaller than one chunk: nothing


def test_report_chunk_sizes_default_to_the_settings(
    clearml_conf, server, cache_dir, caplog, chunk_sizes
) -> None:
    progress._overrides.clear()
    clearml_conf.write_text("sdk.storage.log.report_download_chunk_size_mb: 2\n")
    reset_config()
    caplog.set_level(logging.INFO, logger="clearml_core.storage.progress")
    (server.root / "big.bin").write_bytes(os.urandom(5 * MB))
    assert StorageManager.get_local_copy(server.url + "big.bin")
    assert [line.split(" / ")[0].split(" @ ")[0] for line in _lines(caplog)] == [
        "Downloading: 2.00MB",
        "Downloading: 4.00MB",
        "Downloading: 5.00MB",
    ]


# -- the file server -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("conf", "expected"),
    [
        ("", "https://files.clear.ml"),
        ('api.files_server: "http://files.local:8081/"', "http://files.local:8081"),
        ('api.api_server: "http://10.0.0.5:8008"', "http://10.0.0.5:8081"),
        ('api.api_server: "https://api.example.com"', "https://files.example.com"),
        (
            'api { api_server: "https://x.example.com", web_server: "https://app.corp.com" }',
            "https://files.corp.com",
        ),
        ('api.web_server: "http://server:8080"', "https://files.clear.ml"),  # no API server: ClearML's
        ('api { api_server: "http://h:8008", web_server: "http://h:9080" }', "http://h:8081"),
    ],
)
def test_get_files_server(clearml_conf, conf: str, expected: str) -> None:
    clearml_conf.write_text(conf + "\n")
    reset_config()
    assert StorageManager.get_files_server() == expected


def test_get_files_server_from_the_environment(clearml_conf, monkeypatch) -> None:
    monkeypatch.setenv("CLEARML_FILES_HOST", "https://files.from.env")
    reset_config()
    assert StorageManager.get_files_server() == "https://files.from.env"


# -- local listings --------------------------------------------------------------------------


@pytest.fixture
def tree(tmp_path) -> Path:
    root = tmp_path / "x"
    for name in ("tree/a.txt", "tree/sub/b.txt", "tree2/c.txt", "treefile.txt"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(name[-5])
    (root / "empty").mkdir()
    return root


def test_local_list_keeps_to_the_folder(tree: Path) -> None:
    for url in (str(tree / "tree"), str(tree / "tree") + "/", f"file://{tree}/tree", f"file://{tree}/tree/"):
        assert StorageManager.list(url) == ["a.txt", "sub/b.txt"], url  # never tree2/, never treefile.txt
    assert StorageManager.list(str(tree / "empty")) == []
    listed = StorageManager.list(str(tree / "tree"), with_metadata=True) or []
    assert [(e["name"], e["size"]) for e in listed] == [("a.txt", 1), ("sub/b.txt", 1)]


def test_local_list_of_no_folder_is_none(tree: Path, caplog) -> None:
    for url in ("missing", "missing/", "tre", "treefile.txt"):
        assert StorageManager.list(str(tree / url)) is None, url
    assert StorageManager.list(f"file://{tree}/missing", return_full_path=True) is None
    assert "cannot list files" in caplog.text


def test_local_list_full_paths_keep_the_form_written(tree: Path) -> None:
    assert StorageManager.list(f"file://{tree}/tree", return_full_path=True) == [
        f"file://{tree}/tree/a.txt",
        f"file://{tree}/tree/sub/b.txt",
    ]
    assert StorageManager.list(f"file://{tree}/tree/", return_full_path=True) == [
        f"file://{tree}/tree/a.txt",
        f"file://{tree}/tree/sub/b.txt",
    ]
    assert StorageManager.list(str(tree / "tree"), return_full_path=True) == [
        str(tree / "tree" / "a.txt"),
        str(tree / "tree" / "sub" / "b.txt"),
    ]
    listed = StorageManager.list(f"file://{tree}/tree", return_full_path=True, with_metadata=True) or []
    assert [e["name"] for e in listed] == [f"file://{tree}/tree/a.txt", f"file://{tree}/tree/sub/b.txt"]
