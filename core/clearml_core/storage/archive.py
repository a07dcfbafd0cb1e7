"""Extracting downloaded archives (.zip, .tar, .tar.gz, .tgz) safely and exactly once.

An archive is unpacked into a temporary folder beside its target and renamed into place when
complete, so a reader never sees half an extraction and a killed process leaves only a temporary
folder behind. Every entry is checked before anything is written: names that are absolute or
climb out with ``..``, symbolic or hard links that point outside the target, device files and
FIFOs are refused with an error that names the entry. Files are written without following links
that already exist in the target, and the parent of each one is checked to lie inside it.
"""

from __future__ import annotations

import os
import shutil
import stat
import tarfile
import uuid
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO

from clearml_core.errors import UserError

ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".zip")
TEMP_PREFIX = ".extracting-"
"""Prefix of the temporary folders extractions go through, beside their target."""
_CHUNK = 1 << 20


class ArchiveError(UserError):
    """An archive cannot be extracted."""


class UnsafeArchiveError(ArchiveError):
    """An archive entry would write outside the target folder, or is a device or FIFO."""


class CorruptArchiveError(ArchiveError):
    """An archive cannot be read (truncated, not an archive, bad checksum)."""


def archive_suffix(name: str) -> str | None:
    """``.tar.gz`` / ``.tgz`` / ``.tar`` / ``.zip`` when ``name`` names an archive, else None."""
    lowered = name.lower()
    return next((suffix for suffix in ARCHIVE_SUFFIXES if lowered.endswith(suffix)), None)


@dataclass(frozen=True)
class _Entry:
    """One archive member in a form both formats share."""

    name: str
    kind: str  # file | dir | symlink | hardlink
    mode: int
    mtime: float | None
    link: str = ""


def _clean_name(archive: Path, raw: str) -> PurePosixPath:
    """The member's path relative to the target; absolute and climbing names are refused."""
    name = raw.replace("\\", "/")
    if name.startswith("/") or (len(name) > 1 and name[1] == ":") or name.startswith("//"):
        raise UnsafeArchiveError(
            f"{archive.name}: entry {raw!r} has an absolute path; refusing to extract an archive "
            "that writes outside its folder"
        )
    parts = [part for part in name.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise UnsafeArchiveError(
            f"{archive.name}: entry {raw!r} climbs out of the target folder with '..'; refusing to extract it"
        )
    return PurePosixPath(*parts) if parts else PurePosixPath()


def _inside(relative: PurePosixPath) -> bool:
    """Whether a path relative to the target, once '..' are folded, stays inside it."""
    depth = 0
    for part in relative.parts:
        if part == "..":
            depth -= 1
            if depth < 0:
                return False
        elif part not in ("", "."):
            depth += 1
    return True


def _check_link(archive: Path, entry_name: PurePosixPath, raw: str, target: str, kind: str) -> None:
    text = target.replace("\\", "/")
    if not text or text.startswith("/") or (len(text) > 1 and text[1] == ":"):
        raise UnsafeArchiveError(
            f"{archive.name}: {kind} {raw!r} points to {target!r}, an absolute path outside the "
            "target folder; refusing to extract it"
        )
    base = entry_name.parent if kind == "symbolic link" else PurePosixPath()
    if not _inside(base / PurePosixPath(text)):
        raise UnsafeArchiveError(
            f"{archive.name}: {kind} {raw!r} points to {target!r}, outside the target folder; "
            "refusing to extract it"
        )


def _tar_entries(archive: Path, tar: tarfile.TarFile) -> Iterator[tuple[_Entry, tarfile.TarInfo]]:
    for member in tar:
        name = _clean_name(archive, member.name)
        if member.ischr() or member.isblk():
            raise UnsafeArchiveError(
                f"{archive.name}: entry {member.name!r} is a device file; refusing to extract it"
            )
        if member.isfifo():
            raise UnsafeArchiveError(
                f"{archive.name}: entry {member.name!r} is a FIFO; refusing to extract it"
            )
        if member.issym():
            _check_link(archive, name, member.name, member.linkname, "symbolic link")
            yield _Entry(str(name), "symlink", member.mode, member.mtime, member.linkname), member
        elif member.islnk():
            _check_link(archive, name, member.name, member.linkname, "hard link")
            link = _clean_name(archive, member.linkname)
            yield _Entry(str(name), "hardlink", member.mode, member.mtime, str(link)), member
        elif member.isdir():
            yield _Entry(str(name), "dir", member.mode, member.mtime), member
        elif member.isfile():
            yield _Entry(str(name), "file", member.mode, member.mtime), member
        else:
            raise UnsafeArchiveError(
                f"{archive.name}: entry {member.name!r} is of an unsupported type "
                f"({member.type!r}); refusing to extract it"
            )


def _zip_entries(archive: Path, zf: zipfile.ZipFile) -> Iterator[tuple[_Entry, zipfile.ZipInfo]]:
    for info in zf.infolist():
        name = _clean_name(archive, info.filename)
        mode = (info.external_attr >> 16) & 0xFFFF
        kind_bits = stat.S_IFMT(mode) if info.create_system == 3 else 0
        mtime = _zip_mtime(info)
        if kind_bits in (stat.S_IFCHR, stat.S_IFBLK):
            raise UnsafeArchiveError(
                f"{archive.name}: entry {info.filename!r} is a device file; refusing to extract it"
            )
        if kind_bits == stat.S_IFIFO:
            raise UnsafeArchiveError(
                f"{archive.name}: entry {info.filename!r} is a FIFO; refusing to extract it"
            )
        if kind_bits == stat.S_IFLNK:
            target = zf.read(info).decode("utf-8", "surrogateescape")
            _check_link(archive, name, info.filename, target, "symbolic link")
            yield _Entry(str(name), "symlink", mode, mtime, target), info
        elif info.is_dir():
            yield _Entry(str(name), "dir", mode or 0o755, mtime), info
        else:
            yield _Entry(str(name), "file", mode or 0o644, mtime), info


def _zip_mtime(info: zipfile.ZipInfo) -> float | None:
    import time

    try:
        return time.mktime((*info.date_time, 0, 0, -1))
    except (OverflowError, ValueError):
        return None


class _Writer:
    """Writes entries under ``root`` without ever following a link out of it."""

    def __init__(self, archive: Path, root: Path) -> None:
        self.archive = archive
        self.root = root
        self.real_root = os.path.realpath(root)
        self.size = 0
        self._dir_times: list[tuple[Path, float]] = []

    def _path(self, entry: _Entry) -> Path:
        path = self.root / entry.name
        self._check_real(entry, path.parent)
        return path

    def _check_real(self, entry: _Entry, path: Path) -> None:
        real = os.path.realpath(path)
        if real != self.real_root and not real.startswith(self.real_root + os.sep):
            raise UnsafeArchiveError(
                f"{self.archive.name}: entry {entry.name!r} would be written through a link that "
                "leads outside the target folder; refusing to extract it"
            )

    def _make_parents(self, entry: _Entry) -> None:
        """Create the entry's folders one by one, never following a link out of the target."""
        current = self.root
        for part in PurePosixPath(entry.name).parent.parts:
            current = current / part
            if not os.path.lexists(current):
                current.mkdir()
            self._check_real(entry, current)

    def _clear(self, path: Path) -> None:
        if path.is_symlink() or path.is_file():
            path.unlink()
        elif path.is_dir():
            shutil.rmtree(path)

    def directory(self, entry: _Entry) -> None:
        if not entry.name:
            return
        self._make_parents(entry)
        path = self._path(entry)
        if path.is_symlink():
            path.unlink()
        path.mkdir(exist_ok=True)
        os.chmod(path, (entry.mode & 0o777) | 0o700)
        if entry.mtime is not None:
            self._dir_times.append((path, entry.mtime))

    def file(self, entry: _Entry, source: IO[bytes]) -> None:
        self._make_parents(entry)
        path = self._path(entry)
        self._clear(path)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
        fd = os.open(path, flags, 0o600)
        with os.fdopen(fd, "wb") as out:
            while chunk := source.read(_CHUNK):
                out.write(chunk)
                self.size += len(chunk)
        self._finish(path, entry)

    def symlink(self, entry: _Entry) -> None:
        self._make_parents(entry)
        path = self._path(entry)
        self._clear(path)
        os.symlink(entry.link, path)

    def hardlink(self, entry: _Entry) -> None:
        self._make_parents(entry)
        path = self._path(entry)
        source = self.root / entry.link
        real_source = os.path.realpath(source)
        if not real_source.startswith(self.real_root + os.sep) or not os.path.isfile(real_source):
            raise UnsafeArchiveError(
                f"{self.archive.name}: hard link {entry.name!r} points to {entry.link!r}, which is not "
                "a file extracted from this archive; refusing to extract it"
            )
        self._clear(path)
        # a copy, not a real hard link: a later write to one must not change the other
        shutil.copyfile(real_source, path)
        self.size += os.path.getsize(path)
        self._finish(path, entry)

    def _finish(self, path: Path, entry: _Entry) -> None:
        # no set-uid/set-gid/sticky bits from an archive; the owner can always read and write
        os.chmod(path, (entry.mode & 0o777) | 0o600)
        if entry.mtime is not None:
            os.utime(path, (entry.mtime, entry.mtime))

    def close(self) -> None:
        for path, mtime in reversed(self._dir_times):
            os.utime(path, (mtime, mtime))


def _extract_into(archive: Path, suffix: str, root: Path) -> int:
    writer = _Writer(archive, root)
    if suffix == ".zip":
        with zipfile.ZipFile(archive) as zf:
            for entry, info in _zip_entries(archive, zf):
                if entry.kind == "dir":
                    writer.directory(entry)
                elif entry.kind == "symlink":
                    writer.symlink(entry)
                else:
                    with zf.open(info) as source:
                        writer.file(entry, source)
    else:
        with _open_tar(archive, suffix) as tar:
            for entry, member in _tar_entries(archive, tar):
                if entry.kind == "dir":
                    writer.directory(entry)
                elif entry.kind == "symlink":
                    writer.symlink(entry)
                elif entry.kind == "hardlink":
                    writer.hardlink(entry)
                else:
                    data = tar.extractfile(member)
                    if data is None:
                        raise CorruptArchiveError(f"{archive.name}: entry {member.name!r} has no data")
                    with data:
                        writer.file(entry, data)
    writer.close()
    return writer.size


def _open_tar(archive: Path, suffix: str) -> tarfile.TarFile:
    """.tar.gz / .tgz must be gzip; a plain .tar may be compressed any way tarfile knows."""
    if suffix in (".tar.gz", ".tgz"):
        return tarfile.open(archive, "r:gz")
    return tarfile.open(archive, "r:*")


def extract(archive: Path, target: Path, *, force: bool = False) -> tuple[Path, int]:
    """Extract ``archive`` into ``target`` atomically; reuse ``target`` when it already exists.

    Returns the folder and the bytes written (0 when an existing extraction was reused).
    Callers that may race (several processes) hold the cache entry's lock; without it the first
    rename wins and the others reuse its result.
    """
    suffix = archive_suffix(archive.name)
    if suffix is None:
        raise ArchiveError(f"{archive.name} is not a .zip, .tar, .tar.gz or .tgz archive")
    if target.is_dir() and not force:
        return target, 0
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = target.parent / f"{TEMP_PREFIX}{target.name}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    temp.mkdir()
    try:
        size = _extract_into(archive, suffix, temp)
    except ArchiveError:
        shutil.rmtree(temp, ignore_errors=True)
        raise
    except (
        tarfile.TarError,
        zipfile.BadZipFile,
        zipfile.LargeZipFile,
        zlib.error,
        EOFError,
        ValueError,
    ) as error:
        shutil.rmtree(temp, ignore_errors=True)
        raise CorruptArchiveError(
            f"{archive.name} cannot be read as a {suffix} archive ({type(error).__name__}: {error}); "
            "it may be truncated or not an archive at all — download it again or check its source"
        ) from None
    except OSError as error:
        shutil.rmtree(temp, ignore_errors=True)
        if type(error).__name__ == "BadGzipFile":
            raise CorruptArchiveError(f"{archive.name} is not valid gzip data ({error})") from None
        raise
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
    if force and target.exists():
        _replace(temp, target)
    else:
        try:
            os.rename(temp, target)
        except OSError:
            shutil.rmtree(temp, ignore_errors=True)  # another process finished first
            if not target.is_dir():
                raise
            return target, 0
    return target, size


def _replace(temp: Path, target: Path) -> None:
    """Swap a fresh extraction in for an old one (``force``) with a single rename of each."""
    old = target.parent / f"{TEMP_PREFIX}{target.name}-old-{uuid.uuid4().hex[:8]}"
    os.rename(target, old)
    os.rename(temp, target)
    shutil.rmtree(old, ignore_errors=True)


def is_temporary(name: str) -> bool:
    """Whether a name in the cache folder is an unfinished extraction."""
    return name.startswith(TEMP_PREFIX)


__all__ = [
    "ARCHIVE_SUFFIXES",
    "TEMP_PREFIX",
    "ArchiveError",
    "CorruptArchiveError",
    "UnsafeArchiveError",
    "archive_suffix",
    "extract",
    "is_temporary",
]
