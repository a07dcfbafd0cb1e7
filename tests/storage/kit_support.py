"""Shared pieces of the storage driver tests: one configuration per module, loaded once.

Loading clearml.conf parses every defaults file; the autouse ``clearml_home`` fixture gives each
test a fresh HOME (and so a cold parse cache), which costs seconds per test. The drivers only
read a few keys, so the conformance tests share one configuration built from the defaults alone.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from clearml_core.config import Config
from clearml_core.settings import load_config


def defaults_only_config(tmp_path_factory: pytest.TempPathFactory) -> Config:
    """The built-in defaults, no user file, no environment overrides."""
    folder = tmp_path_factory.mktemp("config")
    empty = folder / "clearml.conf"
    empty.write_text("", encoding="utf-8")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CACHE_HOME", str(folder / "cache"))
        return load_config(empty, environ={})


def write_tree(root: Path, files: dict[str, bytes]) -> None:
    for name, data in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
