"""``clearml-core storage …`` through the real command line."""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import pytest

from tests.helpers import run_cli
from tests.storage.fileserver import serve


@pytest.fixture
def env(tmp_path) -> dict[str, str]:
    return {"CLEARML_CACHE_DIR": str(tmp_path / "cache"), "HOME": os.environ["HOME"]}


@pytest.fixture
def tree(tmp_path) -> Path:
    root = tmp_path / "src"
    (root / "sub").mkdir(parents=True)
    (root / "a.txt").write_text("alpha")
    (root / "sub" / "b.txt").write_text("beta")
    return root


def test_cp_ls_rm_round_trip(tmp_path, tree, env):
    dest = tmp_path / "dest"
    result = run_cli("storage", "cp", "-r", str(tree), f"file://{dest}/", "--jobs", "2", env=env)
    assert result.code == 0, result.text
    assert result.out.strip() == "copied 2 files (9 B)"
    assert "\r" not in result.err  # no progress bar in a pipe
    assert (dest / "sub" / "b.txt").read_text() == "beta"

    listed = run_cli("storage", "ls", str(dest), "-r", "--json", env=env)
    data = json.loads(listed.out)
    assert [(d["name"], d["size"]) for d in data] == [("a.txt", 5), ("b.txt", 4)]
    plain = run_cli("storage", "ls", str(dest), env=env)
    assert "DIR" in plain.out and f"file://{dest}/a.txt" in plain.out

    single = run_cli("storage", "cp", str(tree / "a.txt"), str(tmp_path / "one") + "/", env=env)
    assert single.code == 0 and (tmp_path / "one" / "a.txt").read_text() == "alpha"

    removed = run_cli("storage", "rm", "-r", str(dest), env=env)
    assert removed.code == 0 and removed.out.strip() == "deleted 2 objects"
    assert not (dest / "a.txt").exists()


def test_user_errors_exit_2_with_one_line(tmp_path, env):
    missing = run_cli("storage", "cp", str(tmp_path / "nope.txt"), str(tmp_path / "x"), env=env)
    assert missing.code == 2 and missing.err.count("\n") == 1 and "nope.txt" in missing.err
    bad = run_cli("storage", "ls", "http://", env=env)
    assert bad.code == 2 and bad.err.startswith("error: ")
    unknown = run_cli("storage", "get", "nosuchscheme://x/y", env=env)
    assert unknown.code == 2 and "nosuchscheme" in unknown.err and "Traceback" not in unknown.err
    folder = run_cli("storage", "cp", str(tmp_path) + "/", str(tmp_path / "x"), env=env)
    assert folder.code != 0 and "-r" in folder.err


def test_get_prints_the_cached_path_and_cache_commands(tmp_path, env):
    with serve(tmp_path / "served") as server:
        (server.root / "m.bin").write_bytes(b"model")
        got = run_cli("storage", "get", server.url + "m.bin", env=env)
        assert got.code == 0, got.text
        path = Path(got.out.strip())
        assert path.read_bytes() == b"model" and path.name.endswith(".m.bin")
        assert path.is_relative_to(tmp_path / "cache")

    listed = json.loads(run_cli("storage", "cache", "ls", "--json", env=env).out)
    assert [(e["context"], e["size"], e["url"]) for e in listed] == [("global", 5, server.url + "m.bin")]
    size = json.loads(run_cli("storage", "cache", "size", "--json", env=env).out)
    assert size["entries"] == 1 and size["bytes"] == 5
    assert size["path"] == str(tmp_path / "cache" / "clearml-core")  # its own folder in the base
    text = run_cli("storage", "cache", "size", env=env)
    assert "1 entries" in text.out
    cleared = run_cli("storage", "cache", "clear", env=env)
    assert cleared.code == 0 and cleared.out.startswith("removed 1 entry")
    assert not path.exists()
    assert json.loads(run_cli("storage", "cache", "ls", "--json", env=env).out) == []


def test_local_get_prints_the_file_itself(tree, env):
    got = run_cli("storage", "get", str(tree / "a.txt"), env=env)
    assert got.out.strip() == str(tree / "a.txt")


def test_resolve_explains_and_masks(env):
    result = run_cli(
        "storage", "resolve", "ftp://alice:hunter22@127.0.0.1:2121/data/x.bin", "--json", env=env
    )
    assert result.code == 0, result.text
    data = json.loads(result.out)
    assert "hunter22" not in result.text
    assert data["backend"] == "fsspec"
    assert data["resolver"] == "url-userinfo"
    assert data["key_id"] == "alice"
    assert data["location"] == {
        "scheme": "ftp",
        "host": "127.0.0.1",
        "port": 2121,
        "user": "alice",
        "path": "/data/x.bin",
    }
    assert data["tried"][0]["resolver"] == "url-userinfo" and data["tried"][0]["answered"]
    text = run_cli("storage", "resolve", "ftp://alice:hunter22@127.0.0.1:2121/data/x.bin", env=env)
    assert "hunter22" not in text.text and "url-userinfo" in text.out


def test_resolve_shows_path_substitution(tmp_path, env):
    conf = tmp_path / "clearml.conf"
    conf.write_text(
        f'sdk.storage.path_substitution: [{{ registered_prefix: "http://old-server/data", local_prefix: "{tmp_path}" }}]'
    )
    result = run_cli(
        "storage",
        "resolve",
        "http://old-server/data/x.csv",
        "--json",
        env={**env, "CLEARML_CONFIG_FILE": str(conf)},
    )
    data = json.loads(result.out)
    assert data["url"] == f"file://{tmp_path}/x.csv"
    assert data["substituted_from"] == "http://old-server/data/x.csv"
    assert data["backend"] == "file" and data["direct_access"] is True


def _copied(result) -> dict:
    assert result.code == 0, result.text
    assert "\r" not in result.err  # no progress line in a pipe
    return json.loads(result.out)


def test_cp_reports_the_bytes_copied(tmp_path, tree, env):
    """Single files reported 0 B; every path reports what it copied, and --json lists it."""
    one = run_cli("storage", "cp", str(tree / "a.txt"), str(tmp_path / "one.txt"), env=env)
    assert one.code == 0 and one.out.strip() == "copied 1 file (5 B)"

    data = _copied(run_cli("storage", "cp", "-r", str(tree), str(tmp_path / "tree"), "--json", env=env))
    assert data == {
        "files": [
            {"source": f"file://{tree}/a.txt", "destination": f"file://{tmp_path}/tree/a.txt", "size": 5},
            {
                "source": f"file://{tree}/sub/b.txt",
                "destination": f"file://{tmp_path}/tree/sub/b.txt",
                "size": 4,
            },
        ],
        "count": 2,
        "bytes": 9,
    }
    with serve(tmp_path / "served") as server:
        up = _copied(
            run_cli("storage", "cp", str(tree / "a.txt"), server.url + "up/a.txt", "--json", env=env)
        )
        assert up == {
            "files": [{"source": f"file://{tree}/a.txt", "destination": server.url + "up/a.txt", "size": 5}],
            "count": 1,
            "bytes": 5,
        }
        (server.root / "big.bin").write_bytes(b"x" * 12345)
        down = _copied(
            run_cli("storage", "cp", server.url + "big.bin", str(tmp_path) + "/", "--json", env=env)
        )
        assert down["files"] == [
            {"source": server.url + "big.bin", "destination": f"file://{tmp_path}/big.bin", "size": 12345}
        ]
        assert (down["count"], down["bytes"]) == (1, 12345)
        across = _copied(
            run_cli("storage", "cp", server.url + "big.bin", server.url + "copy.bin", "--json", env=env)
        )
        assert across["bytes"] == 12345 and (server.root / "copy.bin").stat().st_size == 12345


@pytest.mark.skipif(importlib.util.find_spec("pyarrow") is not None, reason="pyarrow is installed here")
def test_hdfs_without_pyarrow_is_one_line_with_the_install_hint(env):
    for args in (("ls", "hdfs://namenode:8020/user/me/"), ("cp", "hdfs:///user/me/x", "/tmp/never")):
        result = run_cli("storage", *args, env=env)
        assert result.code == 2, result.text
        assert result.err.strip() == (
            "error: hdfs:// needs pyarrow (fsspec's HDFS client is built on it): pip install pyarrow"
        )
