from __future__ import annotations

import io
import os
import stat
import tarfile
import zipfile
from pathlib import Path

import pytest

from clearml_core.errors import UserError
from clearml_core.storage.archive import (
    CorruptArchiveError,
    UnsafeArchiveError,
    archive_suffix,
    extract,
)


def _tar(path: Path, members: list[tuple[tarfile.TarInfo, bytes | None]], mode: str = "w:gz") -> Path:
    with tarfile.open(path, mode) as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                tar.addfile(info)
    return path


def _info(name: str, kind: bytes = tarfile.REGTYPE, link: str = "", mode: int = 0o644) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    info.mode = mode
    return info


def _zip(path: Path, entries: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return path


@pytest.fixture
def work(tmp_path: Path) -> Path:
    """A folder of this test's own (the autouse home fixture lives in pytest's tmp_path)."""
    folder = tmp_path / "work"
    folder.mkdir()
    return folder


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("a.zip", ".zip"),
        ("a.TAR.GZ", ".tar.gz"),
        ("a.tgz", ".tgz"),
        ("a.tar", ".tar"),
        ("a.gz", None),
        ("a.txt", None),
    ],
)
def test_archive_suffix(name, expected):
    assert archive_suffix(name) == expected


@pytest.mark.parametrize("suffix", [".tar.gz", ".tgz", ".tar"])
def test_tar_extracts_files_folders_and_inner_links(work, suffix):
    archive = _tar(
        work / f"good{suffix}",
        [
            (_info("top/", tarfile.DIRTYPE, mode=0o755), None),
            (_info("top/a.txt"), b"alpha"),
            (_info("top/sub/b.bin", mode=0o4755), b"beta"),
            (_info("top/link-to-a", tarfile.SYMTYPE, "a.txt"), None),
            (_info("top/sub/up", tarfile.SYMTYPE, "../a.txt"), None),
            (_info("top/hard-a", tarfile.LNKTYPE, "top/a.txt"), None),
        ],
        mode="w:gz" if suffix != ".tar" else "w",
    )
    target = work / "out"
    folder, size = extract(archive, target)
    assert folder == target
    assert (target / "top/a.txt").read_bytes() == b"alpha"
    assert (target / "top/sub/b.bin").read_bytes() == b"beta"
    assert os.readlink(target / "top/link-to-a") == "a.txt"
    assert (target / "top/sub/up").read_bytes() == b"alpha"
    assert (target / "top/hard-a").read_bytes() == b"alpha"
    assert size == len(b"alpha") * 2 + len(b"beta")
    # no set-uid bit survives extraction
    assert not (target / "top/sub/b.bin").stat().st_mode & stat.S_ISUID
    assert _leftovers(work) == sorted([archive.name, "out"])


def test_zip_extracts_and_is_reused(work):
    archive = _zip(work / "good.zip", {"d/x.txt": b"x", "y.txt": b"yy"})
    target = work / "out"
    assert extract(archive, target) == (target, 3)
    (target / "marker").write_text("kept")
    # a second call reuses the extraction instead of unpacking again
    assert extract(archive, target) == (target, 0)
    assert (target / "marker").exists()
    # force unpacks afresh, replacing the old folder in one step
    assert extract(archive, target, force=True) == (target, 3)
    assert not (target / "marker").exists()
    assert _leftovers(work) == ["good.zip", "out"]


MALICIOUS_TAR = {
    "dotdot": ([(_info("../evil.txt"), b"x")], "climbs out"),
    "nested-dotdot": ([(_info("ok/../../evil.txt"), b"x")], "climbs out"),
    "absolute": ([(_info("/tmp/evil.txt"), b"x")], "absolute path"),
    "symlink-absolute": ([(_info("link", tarfile.SYMTYPE, "/etc/passwd"), None)], "absolute path"),
    "symlink-outside": ([(_info("sub/link", tarfile.SYMTYPE, "../../outside"), None)], "outside the target"),
    "hardlink-outside": ([(_info("hard", tarfile.LNKTYPE, "../outside"), None)], "climbs out|outside"),
    "hardlink-absolute": ([(_info("hard", tarfile.LNKTYPE, "/etc/passwd"), None)], "absolute path"),
    "char-device": ([(_info("dev", tarfile.CHRTYPE), None)], "device file"),
    "block-device": ([(_info("dev", tarfile.BLKTYPE), None)], "device file"),
    "fifo": ([(_info("pipe", tarfile.FIFOTYPE), None)], "FIFO"),
}


@pytest.mark.parametrize("case", sorted(MALICIOUS_TAR))
def test_malicious_tar_entries_are_refused_and_nothing_is_left(work, case):
    members, message = MALICIOUS_TAR[case]
    # a harmless entry first, so a half-done extraction would be visible
    archive = _tar(work / f"{case}.tar.gz", [(_info("fine.txt"), b"fine"), *members])
    target = work / "out"
    with pytest.raises(UnsafeArchiveError, match=message) as caught:
        extract(archive, target)
    assert isinstance(caught.value, UserError)
    entry_name = members[0][0].name
    assert repr(entry_name) in str(caught.value)
    assert _leftovers(work) == [archive.name]
    assert not (work.parent / "evil.txt").exists()


def test_inner_links_are_followed_safely(work):
    archive = _tar(
        work / "chain.tar",
        [
            (_info("a", tarfile.SYMTYPE, "."), None),
            (_info("a/b", tarfile.SYMTYPE, "."), None),
            (_info("a/b/c.txt"), b"inside"),
        ],
        mode="w",
    )
    target = work / "out"
    extract(archive, target)
    assert (target / "c.txt").read_bytes() == b"inside"


@pytest.mark.parametrize("inner", ["evil.txt", "new/deeper/evil.txt"])
def test_write_through_a_link_chain_that_leaves_is_refused(work, inner):
    # every link passes the check on its own text ('d/e/l/..' looks like 'd/e'), but at run
    # time 'l' resolves to the root, so 'x' is the root's parent; writing through it is refused
    archive = _tar(
        work / "chain.tar",
        [
            (_info("d/e/", tarfile.DIRTYPE, mode=0o755), None),
            (_info("d/e/l", tarfile.SYMTYPE, "../.."), None),
            (_info("x", tarfile.SYMTYPE, "d/e/l/.."), None),
            (_info(f"x/{inner}"), b"evil"),
        ],
        mode="w",
    )
    with pytest.raises(UnsafeArchiveError, match="through a link"):
        extract(archive, work / "out")
    assert not (work / "evil.txt").exists()
    assert not (work / "new").exists()
    assert _leftovers(work) == ["chain.tar"]


@pytest.mark.parametrize(
    ("entry", "message"),
    [("../evil.txt", "climbs out"), ("/abs/evil.txt", "absolute path"), ("C:/evil.txt", "absolute path")],
)
def test_malicious_zip_entries_are_refused(work, entry, message):
    archive = work / "bad.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("fine.txt", b"fine")
        zf.writestr(zipfile.ZipInfo(entry), b"evil")
    with pytest.raises(UnsafeArchiveError, match=message):
        extract(archive, work / "out")
    assert _leftovers(work) == ["bad.zip"]


def _zip_special(path: Path, name: str, mode: int, data: bytes) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        info = zipfile.ZipInfo(name)
        info.create_system = 3  # unix, so the mode bits are honoured
        info.external_attr = mode << 16
        zf.writestr(info, data)
    return path


def test_zip_symlink_outside_is_refused_inside_is_kept(work):
    bad = _zip_special(work / "bad.zip", "link", stat.S_IFLNK | 0o777, b"../../etc/passwd")
    with pytest.raises(UnsafeArchiveError, match="symbolic link 'link'"):
        extract(bad, work / "out")
    good = _zip_special(work / "good.zip", "d/link", stat.S_IFLNK | 0o777, b"../target.txt")
    extract(good, work / "ok")
    assert os.readlink(work / "ok" / "d" / "link") == "../target.txt"


def test_zip_device_and_fifo_are_refused(work):
    dev = _zip_special(work / "dev.zip", "dev", stat.S_IFCHR | 0o600, b"")
    with pytest.raises(UnsafeArchiveError, match="device file"):
        extract(dev, work / "out")
    fifo = _zip_special(work / "fifo.zip", "pipe", stat.S_IFIFO | 0o600, b"")
    with pytest.raises(UnsafeArchiveError, match="FIFO"):
        extract(fifo, work / "out")


@pytest.mark.parametrize("suffix", [".zip", ".tar.gz", ".tgz", ".tar"])
def test_garbage_is_a_clear_error(work, suffix):
    archive = work / f"garbage{suffix}"
    archive.write_bytes(b"this is not an archive at all" * 10)
    with pytest.raises(CorruptArchiveError, match=f"garbage{suffix}"):
        extract(archive, work / "out")
    assert _leftovers(work) == [archive.name]


def test_truncated_archive_is_a_clear_error_and_nothing_half_written(work):
    good = _tar(work / "full.tar.gz", [(_info(f"f{i}.bin"), os.urandom(50_000)) for i in range(5)])
    data = good.read_bytes()
    truncated = work / "cut.tar.gz"
    truncated.write_bytes(data[: len(data) * 2 // 3])
    good.unlink()
    with pytest.raises(CorruptArchiveError, match="cut.tar.gz"):
        extract(truncated, work / "out")
    assert _leftovers(work) == ["cut.tar.gz"]


def test_corrupt_zip_member_is_a_clear_error(work):
    archive = _zip(work / "crc.zip", {"a.txt": b"A" * 1000})
    data = bytearray(archive.read_bytes())
    start = data.index(b"A" * 100)
    data[start : start + 10] = b"B" * 10  # stored (uncompressed), so the CRC check fails
    archive.write_bytes(bytes(data))
    with pytest.raises(CorruptArchiveError, match="crc.zip"):
        extract(archive, work / "out")
    assert _leftovers(work) == ["crc.zip"]
