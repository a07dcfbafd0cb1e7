"""The download cache shares its base folder with ClearML's and never touches ClearML's files.

ClearML users set ``sdk.storage.cache.default_base_dir: ~/.clearml/cache`` (what clearml-init
writes), and clearml-core adopts that setting. ClearML keeps its entries there under
``storage_manager/<context>/`` with the same ``<md5>.<name>`` shape as ours, so the cache keeps
everything it writes in ``<base>/clearml-core/`` and looks nowhere else: ``cache clear``,
eviction (by count, by bytes, by free space) and an index rebuild leave every other file of the
base byte for byte as it was.

The hand-made tree below copies the layouts ClearML 2.x writes (``storage_manager/`` and, with
``sdk.storage.cache.size`` set, ``storage/<scheme>/<host>/``); ``test_a_tree_written_by_clearml_survives``
has the real package write both.
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pytest

from clearml_core.storage.cache import (
    CACHE_FOLDER,
    PARTIAL_PREFIX,
    Cache,
    CacheSettings,
    archive_folder_name,
    entry_name,
)
from tests.helpers import clock_passes


def _md5(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


def clearml_tree(base: Path) -> None:
    """What ClearML 2.x leaves in its cache folder (``get_local_copy``, archives, datasets, …)."""
    sm = base / "storage_manager"
    files = {
        # get_local_copy: <md5 of the URL>.<file name>, per context
        f"global/{_md5('s3://b/a.txt')}.a.txt": b"alpha",
        f"global/{_md5('s3://b/set.zip')}.set.zip": b"PK zip bytes",
        f"models/{_md5('s3://b/model.bin')}.model.bin": os.urandom(3000),
        # extracted archives: <md5>.<stem>_artifacts_archive_<name> (name None when not given)
        f"global/{_md5('s3://b/set.zip')}.set_artifacts_archive_None/inner/x.txt": b"x" * 10,
        f"global/{_md5('s3://b/set.zip')}.set_artifacts_archive_named/inner/x.txt": b"x" * 10,
        # a lock file of a folder in use
        f"global/.lock.000.{_md5('s3://b/set.zip')}.set_artifacts_archive_None.clearml": b"",
        # download_file without a local folder: the remote path under the context folder
        "global/127.0.0.1:8081/data/a.txt": b"alpha",
        # datasets: their own context and folder template
        f"datasets/{_md5('s3://b/ds.tar.gz')}.ds.tar.gz": b"\x1f\x8b tar",
        f"datasets/{_md5('s3://b/ds.tar.gz')}.ds_archive_None/t/y.txt": b"y" * 20,
    }
    for name, data in files.items():
        path = sm / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    # with sdk.storage.cache.size set, ClearML's disk-space layout: storage/<scheme>/<host>/<path>
    host = base / "storage" / "https" / "127.0.0.1.8081"
    (host / f"{_md5('http://127.0.0.1:8081/set.zip')}.set_artifacts_archive_cache" / "inner").mkdir(
        parents=True
    )
    (
        host / f"{_md5('http://127.0.0.1:8081/set.zip')}.set_artifacts_archive_cache" / "inner" / "x.txt"
    ).write_bytes(b"x")
    (host / "set.zip").write_bytes(b"PK zip bytes")
    (host / "a.txt").write_bytes(b"alpha")
    (base / "offline" / "task-1").mkdir(parents=True)
    (base / "offline" / "task-1" / "data.json").write_text("{}")


def fingerprint(folder: Path, *, skip: str | None = None) -> dict[str, str]:
    """Every file and folder below ``folder`` (but ``skip``), with a hash of each file's bytes."""
    found: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        relative = Path(dirpath).relative_to(folder)
        if relative == Path(".") and skip in dirnames:
            dirnames.remove(skip)
        for name in dirnames:
            found[(relative / name).as_posix() + "/"] = "folder"
        for name in filenames:
            data = (Path(dirpath) / name).read_bytes()
            found[(relative / name).as_posix()] = hashlib.sha256(data).hexdigest()
    return found


def _fill(cache: Cache, count: int, size: int, context: str | None = None, tag: str = "") -> list[Path]:
    paths = []
    for i in range(count):
        url = f"http://h/{tag}{context}/{i}"
        name = entry_name(url, f"f{i}.bin")
        paths.append(cache.fetch(context, name, lambda p, n=size: p.write_bytes(b"z" * n), url=url))
        cache.flush()  # recorded (and limits enforced, in the background) before the next one
        clock_passes(time.time())  # the next entry is used later
    return paths


@pytest.fixture
def shared_base(tmp_path: Path) -> Path:
    """A cache base that ClearML has used already."""
    base = tmp_path / ".clearml" / "cache"
    clearml_tree(base)
    return base


def test_everything_the_cache_writes_is_in_its_own_folder(shared_base: Path) -> None:
    before = fingerprint(shared_base)
    cache = Cache(CacheSettings(base_dir=shared_base, default_file_limit=10))
    paths = _fill(cache, 3, 10) + _fill(cache, 2, 10, context="models")
    assert cache.root == shared_base / CACHE_FOLDER
    assert all(path.is_relative_to(cache.root) for path in paths)
    assert paths[0].parent == cache.root / "global" and paths[-1].parent == cache.root / "models"
    assert fingerprint(shared_base, skip=CACHE_FOLDER) == before
    assert cache.size()["path"] == str(cache.root)


def test_clear_leaves_clearmls_files(shared_base: Path) -> None:
    before = fingerprint(shared_base)
    cache = Cache(CacheSettings(base_dir=shared_base))
    paths = _fill(cache, 3, 10) + _fill(cache, 1, 10, context="datasets")
    for context in ("global", "datasets", "storage_manager"):
        cache.clear(context)
    cache.clear()
    assert not any(path.exists() for path in paths)
    assert fingerprint(shared_base, skip=CACHE_FOLDER) == before


def test_eviction_by_count_and_by_size_leaves_clearmls_files(shared_base: Path) -> None:
    before = fingerprint(shared_base)
    by_count = Cache(CacheSettings(base_dir=shared_base, default_file_limit=2))
    paths = _fill(by_count, 5, 10, tag="count")
    assert [path.exists() for path in paths] == [False, False, False, True, True]
    by_size = Cache(CacheSettings(base_dir=shared_base, default_file_limit=100, max_used_bytes=1))
    _fill(by_size, 3, 100, context="global", tag="size")
    assert not paths[3].exists() and not paths[4].exists()
    free = Cache(CacheSettings(base_dir=shared_base, default_file_limit=100, min_free_bytes=1 << 62))
    _fill(free, 2, 10, context="models", tag="free")
    assert fingerprint(shared_base, skip=CACHE_FOLDER) == before


def test_a_rebuilt_index_holds_only_the_caches_own_entries(shared_base: Path) -> None:
    before = fingerprint(shared_base)
    cache = Cache(CacheSettings(base_dir=shared_base, default_file_limit=100))
    paths = _fill(cache, 2, 10)
    name = entry_name("http://h/a.zip", "a.zip")
    archive = cache.fetch(None, name, lambda p: p.write_bytes(b"zip"))
    extracted = archive.parent / archive_folder_name(name)
    (extracted / "inner").mkdir(parents=True)
    (extracted / "inner" / "x").write_bytes(b"123")
    # something else put into a context folder of ours is not ours either
    (cache.root / "global" / "notes.txt").write_text("mine")
    cache.index.close()
    for suffix in ("", "-wal", "-shm"):
        (cache.root / f"index.sqlite3{suffix}").unlink(missing_ok=True)
    rebuilt = Cache(CacheSettings(base_dir=shared_base, default_file_limit=1, max_used_bytes=1))
    assert {(row.context, row.name) for row in rebuilt.index.rows()} == {
        ("global", paths[0].name),
        ("global", paths[1].name),
        ("global", name),
        ("global", extracted.name),
    }
    rebuilt.enforce_limits(None)
    rebuilt.clear()
    assert not any(path.exists() for path in [*paths, archive, extracted])
    assert (cache.root / "global" / "notes.txt").read_text() == "mine"
    assert fingerprint(shared_base, skip=CACHE_FOLDER) == before


def test_clear_sweeps_only_leftovers_of_the_caches_own_shape(tmp_path: Path) -> None:
    cache = Cache(CacheSettings(base_dir=tmp_path / "base"))
    folder = cache.folder(None)
    entry = entry_name("http://h/big.bin", "big.bin")
    ours = [
        folder / f"{PARTIAL_PREFIX}{entry}",  # a killed download
        folder / f".{PARTIAL_PREFIX}{entry}.0a1b2c3d.clearml-part",  # its driver's temporary file
        folder / entry,  # an entry whose record a kill -9 lost
    ]
    for path in ours:
        path.write_bytes(b"left over")
    extraction = folder / f".extracting-{archive_folder_name(entry)}-123-abcdef12"
    (extraction / "inner").mkdir(parents=True)
    theirs = [folder / "notes.txt", folder / ".hidden", folder / ("a" * 32), folder / "data" / "x.txt"]
    for path in theirs:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"not the cache's")
    cache.clear()
    assert not any(path.exists() for path in ours) and not extraction.exists()
    assert all(path.read_bytes() == b"not the cache's" for path in theirs)


# -- with ClearML itself ------------------------------------------------------------------------

CLEARML_FILLS = r"""
import sys
from clearml import StorageManager
base = sys.argv[1]
assert StorageManager.get_local_copy(base + "a.txt")
assert StorageManager.get_local_copy(base + "model.bin", cache_context="models")
assert StorageManager.get_local_copy(base + "set.zip")
assert StorageManager.get_local_copy(base + "set.zip", name="named")
assert StorageManager.get_local_copy(base + "arch.tar.gz", cache_context="datasets")
assert StorageManager.download_file(base + "a.txt")
"""

CLEARML_HITS = r"""
import sys
from clearml import StorageManager
print(StorageManager.get_local_copy(sys.argv[1] + "a.txt"))
"""

STORAGE_MANAGER_CONF = """
sdk.storage.cache.default_base_dir: "~/.clearml/cache"
"""
# With size limits ClearML switches to its disk-space layout: <base>/storage/<scheme>/<host>/<path>;
# the same limits (and a count limit) make ours evict.
SIZE_LIMITED_CONF = """
sdk.storage.cache {
  default_base_dir: "~/.clearml/cache"
  default_cache_manager_size: 2
  size.max_used_bytes: 1000
}
"""


@pytest.mark.slow
def test_a_tree_written_by_clearml_survives(clearml_python: Path, clearml_home: Path, tmp_path: Path) -> None:
    import io
    import tarfile
    import zipfile

    from clearml_core import StorageManager
    from clearml_core.settings import reset_config
    from clearml_core.storage.cache import get_cache, reset_cache
    from tests.clearml_side import clearml_env, run_clearml
    from tests.helpers import run_cli
    from tests.storage.fileserver import serve

    served = tmp_path / "served"
    served.mkdir()
    (served / "a.txt").write_text("alpha")
    (served / "model.bin").write_bytes(os.urandom(3000))
    with zipfile.ZipFile(served / "set.zip", "w") as archive:
        archive.writestr("inner/x.txt", "x" * 10)
    with tarfile.open(served / "arch.tar.gz", "w:gz") as archive:
        member = tarfile.TarInfo("t/y.txt")
        member.size = 20
        archive.addfile(member, io.BytesIO(b"y" * 20))
    for i in range(6):
        (served / f"ours-{i}.bin").write_bytes(bytes([i]) * 400)
    # one HOME and one clearml.conf for both: ClearML's cache folder is the base of ours
    base = clearml_home / ".clearml" / "cache"
    with serve(served) as server:
        run_clearml(
            clearml_python, CLEARML_FILLS, server.url, env=clearml_env(clearml_home, STORAGE_MANAGER_CONF)
        )
        run_clearml(
            clearml_python, CLEARML_FILLS, server.url, env=clearml_env(clearml_home, SIZE_LIMITED_CONF)
        )
        assert (base / "storage_manager" / "datasets").is_dir() and (base / "storage").is_dir()
        before = fingerprint(base)
        assert len([name for name in before if not name.endswith("/")]) >= 12, before

        reset_config()
        reset_cache()
        paths = [StorageManager.get_local_copy(server.url + f"ours-{i}.bin") for i in range(4)]
        paths += [StorageManager.get_local_copy(server.url + "ours-5.bin", cache_context="datasets")]
        cache = get_cache()
        cache.flush()
        assert cache.root == base / CACHE_FOLDER
        assert sum(Path(p).exists() for p in paths if p) <= 3  # the count and size limits evicted some
        cache.index.close()
        for suffix in ("", "-wal", "-shm"):
            (cache.root / f"index.sqlite3{suffix}").unlink(missing_ok=True)
        reset_cache()
        assert {row.context for row in get_cache().index.rows()} <= {"global", "datasets"}
        cleared = run_cli("storage", "cache", "clear", env={"HOME": str(clearml_home)})
        assert cleared.code == 0, cleared.text
        assert not any(Path(p).exists() for p in paths if p)
        assert fingerprint(base, skip=CACHE_FOLDER) == before

        # and ClearML still finds its entries: hits, no request to the server
        gets = len(server.requests)
        for conf in (STORAGE_MANAGER_CONF, SIZE_LIMITED_CONF):
            hit = run_clearml(clearml_python, CLEARML_HITS, server.url, env=clearml_env(clearml_home, conf))
            assert Path(hit.strip()).read_text() == "alpha"
        assert len(server.requests) == gets
