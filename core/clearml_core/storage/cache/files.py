"""Small file operations the cache repeats: delete whatever is there, sizes of trees, flushes."""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path


def remove(path: Path) -> None:
    """Delete a file or a folder tree; nothing there is fine."""
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    except FileNotFoundError:
        pass


def fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def is_dir_mode(mode: int) -> bool:
    return stat.S_ISDIR(mode)


def subfolders(base: Path) -> Iterator[os.DirEntry[str]]:
    """The context folders under ``base`` (hidden ones, such as ``.locks``, are not contexts)."""
    if not base.is_dir():
        return
    for item in os.scandir(base):
        if item.is_dir(follow_symlinks=False) and not item.name.startswith("."):
            yield item


def tree_size(path: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, name)).st_size
    return total


__all__ = ["fsync_file", "is_dir_mode", "remove", "subfolders", "tree_size"]
