"""ClearML 2.x's StorageManager calls on s3:// URLs against moto: hashes kept in object metadata, streams."""

from __future__ import annotations

from pathlib import Path

from clearml_core import StorageManager
from clearml_core.settings import reset_config
from plugins.storage_s3.tests.support import MotoServer, endpoint_conf


def test_read_hash_and_get_stream(moto: MotoServer, clearml_home: Path) -> None:
    bucket = moto.new_bucket("hash")
    client = moto.client()
    client.put_object(Bucket=bucket, Key="d/hashed.bin", Body=b"12345", Metadata={"sha256": "ab" * 32})
    client.put_object(Bucket=bucket, Key="d/plain.bin", Body=b"123")
    (clearml_home / "clearml.conf").write_text(endpoint_conf(moto))
    reset_config()
    base = f"s3://{moto.netloc}/{bucket}/"

    listed = StorageManager.list(base + "d/", with_metadata=True, read_hash=True) or []
    assert [(e["name"], e["size"], e.get("hash")) for e in listed] == [
        ("d/hashed.bin", 5, "ab" * 32),
        ("d/plain.bin", 3, None),
    ]
    without = StorageManager.list(base + "d/", with_metadata=True) or []
    assert all("hash" not in entry for entry in without)
    meta = StorageManager.get_metadata(base + "d/hashed.bin", read_hash=True) or {}
    assert (meta["name"], meta["size"], meta["hash"]) == ("d/hashed.bin", 5, "ab" * 32)
    assert "hash" not in (StorageManager.get_metadata(base + "d/hashed.bin") or {})

    assert list(StorageManager.get_stream(base + "d/hashed.bin", chunk_size=2) or []) == [b"12", b"34", b"5"]
    assert StorageManager.get_stream(base + "d/missing.bin") is None


def test_downloads_get_the_umasks_mode(
    moto: MotoServer, clearml_home: Path, tmp_path: Path, monkeypatch
) -> None:
    """Whole and multi-part (parallel ranged GETs into one file) downloads alike: 0666 less the umask."""
    import os
    import stat

    part = 5 * 1024 * 1024
    bucket = moto.new_bucket("modes")
    client = moto.client()
    client.put_object(Bucket=bucket, Key="small.bin", Body=b"small")
    client.put_object(Bucket=bucket, Key="large.bin", Body=os.urandom(part + 1000))
    (clearml_home / "clearml.conf").write_text(
        endpoint_conf(moto)
        + f"sdk.aws.boto3 {{ multipart_threshold: {part}, multipart_chunksize: {part} }}\n"
    )
    monkeypatch.setenv("CLEARML_CACHE_DIR", str(tmp_path / "cache"))
    reset_config()
    base = f"s3://{moto.netloc}/{bucket}/"
    for umask in (0o022, 0o027):
        previous = os.umask(umask)
        try:
            paths = [
                StorageManager.get_local_copy(base + "small.bin", cache_context=f"u{umask:o}"),
                StorageManager.get_local_copy(base + "large.bin", cache_context=f"u{umask:o}"),
                StorageManager.download_file(base + "large.bin", str(tmp_path / f"u{umask:o}")),
            ]
        finally:
            os.umask(previous)
        assert all(paths), paths
        assert [stat.S_IMODE(os.stat(str(p)).st_mode) for p in paths] == [0o666 & ~umask] * 3
