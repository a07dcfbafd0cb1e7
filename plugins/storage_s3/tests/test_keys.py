"""Keys with empty segments, as ClearML writes them, on a moto server: kept exactly everywhere.

ClearML's ``upload_folder("./out", "s3://b/p/")`` writes ``p//a.txt`` (it replaces the local
folder by the URL in each file's path). That is a key of its own, beside a possible ``p/a.txt``;
folding ``//`` would download, list or delete the wrong object.
"""

from __future__ import annotations

import json
from pathlib import Path

from clearml_core import StorageManager
from clearml_core.settings import reset_config
from plugins.storage_s3.tests.support import MotoServer, endpoint_conf
from tests.helpers import run_cli


def test_a_key_with_a_double_slash_downloads_lists_and_deletes(
    moto: MotoServer, clearml_home: Path, tmp_path: Path, monkeypatch
) -> None:
    bucket = moto.new_bucket("keys")
    client = moto.client()
    client.put_object(Bucket=bucket, Key="p//a.txt", Body=b"doubled")
    client.put_object(Bucket=bucket, Key="p/a.txt", Body=b"single")
    client.put_object(Bucket=bucket, Key="r//deep//x.bin", Body=b"x" * 10)
    (clearml_home / "clearml.conf").write_text(endpoint_conf(moto))
    monkeypatch.setenv("CLEARML_CACHE_DIR", str(tmp_path / "cache"))
    reset_config()
    base = f"s3://{moto.netloc}/{bucket}/"

    doubled = StorageManager.get_local_copy(base + "p//a.txt")
    assert doubled and Path(doubled).read_bytes() == b"doubled"
    single = StorageManager.get_local_copy(base + "p/a.txt")
    assert single and Path(single).read_bytes() == b"single"
    assert StorageManager.exists_file(base + "p//a.txt")
    assert StorageManager.get_file_size_bytes(base + "p//a.txt") == len(b"doubled")
    assert sorted(StorageManager.list(base + "p/") or []) == ["p//a.txt", "p/a.txt"]
    assert StorageManager.list(base + "p//") == ["p//a.txt"]
    folder = StorageManager.download_folder(base + "r/", str(tmp_path / "folder"))
    assert (Path(str(folder)) / "r" / "deep" / "x.bin").read_bytes() == b"x" * 10

    listed = run_cli("storage", "ls", "-r", "--json", base + "p/")
    assert listed.code == 0, listed.text
    assert sorted(entry["url"] for entry in json.loads(listed.out)) == [base + "p//a.txt", base + "p/a.txt"]
    copied = run_cli("storage", "cp", base + "p//a.txt", str(tmp_path / "copy.txt"))
    assert copied.code == 0, copied.text
    assert (tmp_path / "copy.txt").read_bytes() == b"doubled"
    tree = run_cli("storage", "cp", "-r", base + "r/", str(tmp_path / "tree"))
    assert tree.code == 0, tree.text
    assert (tmp_path / "tree" / "deep" / "x.bin").read_bytes() == b"x" * 10

    removed = run_cli("storage", "rm", base + "p//a.txt")
    assert removed.code == 0, removed.text
    keys = {item["Key"] for item in client.list_objects_v2(Bucket=bucket)["Contents"]}
    assert keys == {"p/a.txt", "r//deep//x.bin"}
    assert StorageManager.delete(base + "r/", recursive=True) == 1
    keys = {item["Key"] for item in client.list_objects_v2(Bucket=bucket)["Contents"]}
    assert keys == {"p/a.txt"}
