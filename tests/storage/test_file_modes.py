"""Files the storage layer writes get the permissions the umask gives new files, as ``cp`` does.

Atomic writes go through a temporary file renamed over the target; a temporary file made by
``tempfile.mkstemp`` is 0600 whatever the umask, which left copies, downloads, cache entries and
task outputs unreadable to the group (and to ClearML's users' other accounts). With umask 022 a
new file is 0644, with 027 it is 0640 — the same as ``cp`` and ClearML.

The command line runs in a subprocess started with the umask; the in-process calls set it and
restore it around themselves.
"""

from __future__ import annotations

import contextlib
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from clearml_core import StorageManager
from tests.storage.fileserver import serve

UMASKS = [pytest.param(0o022, id="umask-022"), pytest.param(0o027, id="umask-027")]


def _mode(path: Path | str) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def _expected(umask: int) -> int:
    return 0o666 & ~umask


@contextlib.contextmanager
def _umask(value: int) -> Iterator[None]:
    previous = os.umask(value)
    try:
        yield
    finally:
        os.umask(previous)


def _cli(*args: str, umask: int, env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "clearml_core.cli.main", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        umask=umask,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.fixture
def source(tmp_path: Path) -> Path:
    """A folder of files made 0600, so a copy that kept the source's mode would show."""
    root = tmp_path / "source"
    (root / "sub").mkdir(parents=True)
    for name, data in {"a.txt": b"alpha", "sub/b.bin": b"beta" * 100}.items():
        (root / name).write_bytes(data)
        (root / name).chmod(0o600)
    return root


@pytest.fixture
def server(source: Path) -> Iterator[object]:
    with serve(source) as srv:
        yield srv


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {"CLEARML_CACHE_DIR": str(tmp_path / "cache")}


@pytest.mark.parametrize("umask", UMASKS)
def test_cp_local_to_local(source: Path, tmp_path: Path, env: dict[str, str], umask: int) -> None:
    _cli("storage", "cp", str(source / "a.txt"), str(tmp_path / "one" / "a.txt"), umask=umask, env=env)
    _cli("storage", "cp", "-r", str(source), str(tmp_path / "tree"), umask=umask, env=env)
    assert _mode(tmp_path / "one" / "a.txt") == _expected(umask)
    assert _mode(tmp_path / "tree" / "a.txt") == _expected(umask)
    assert _mode(tmp_path / "tree" / "sub" / "b.bin") == _expected(umask)


@pytest.mark.parametrize("umask", UMASKS)
def test_cp_download(server, tmp_path: Path, env: dict[str, str], umask: int) -> None:
    _cli("storage", "cp", server.url + "a.txt", str(tmp_path / "down" / "a.txt"), umask=umask, env=env)
    assert (tmp_path / "down" / "a.txt").read_bytes() == b"alpha"
    assert _mode(tmp_path / "down" / "a.txt") == _expected(umask)


@pytest.mark.parametrize("umask", UMASKS)
def test_get_makes_a_cache_entry(server, env: dict[str, str], umask: int) -> None:
    path = _cli("storage", "get", server.url + "sub/b.bin", umask=umask, env=env).strip()
    assert Path(path).read_bytes() == b"beta" * 100
    assert _mode(path) == _expected(umask)


@pytest.mark.parametrize("umask", UMASKS)
def test_storage_manager_downloads(
    server, tmp_path: Path, env: dict[str, str], monkeypatch, umask: int
) -> None:
    monkeypatch.setenv("CLEARML_CACHE_DIR", env["CLEARML_CACHE_DIR"])
    with _umask(umask):
        cached = StorageManager.get_local_copy(server.url + "a.txt")
        single = StorageManager.download_file(server.url + "sub/b.bin", str(tmp_path / "single"))
        folder = StorageManager.download_folder(str(tmp_path / "source"), str(tmp_path / "folder"))
    assert cached and single and folder
    assert _mode(cached) == _expected(umask)
    assert _mode(single) == _expected(umask)
    copied = [p for p in Path(folder).rglob("*") if p.is_file()]
    assert copied and all(_mode(p) == _expected(umask) for p in copied)


@pytest.mark.parametrize("umask", UMASKS)
def test_task_outputs_uploaded_to_a_folder(source: Path, tmp_path: Path, umask: int) -> None:
    """The agent uploads a task's outputs with ``upload_folder`` (to a shared folder, say)."""
    with _umask(umask):
        StorageManager.upload_folder(str(source), str(tmp_path / "outputs"))
        StorageManager.upload_file(str(source / "a.txt"), str(tmp_path / "single" / "a.txt"))
        with StorageManager.open(str(tmp_path / "written.txt"), "w") as out:
            out.write("text")
    uploaded = [p for p in (tmp_path / "outputs").rglob("*") if p.is_file()]
    assert len(uploaded) == 2
    assert all(_mode(p) == _expected(umask) for p in uploaded)
    assert _mode(tmp_path / "single" / "a.txt") == _expected(umask)
    assert _mode(tmp_path / "written.txt") == _expected(umask)
