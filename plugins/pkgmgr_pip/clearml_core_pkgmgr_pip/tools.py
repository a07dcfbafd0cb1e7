"""Finding the installers: uv (fast, preferred) and pip, and what version they are.

uv is looked for, in order: the ``uv`` Python package of the agent's environment
(``pip install 'clearml-core-pkgmgr-pip[uv]'``), a ``uv`` next to the agent's interpreter, then
``uv`` on ``PATH``. A pyenv shim on ``PATH`` is resolved to the real binary once: going through the
shim costs ~0.2 s a call, as long as installing a small package.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Mapping
from pathlib import Path

_lock = threading.Lock()
_found: dict[str, str | None] = {}
_versions: dict[str, str] = {}


def find_uv(environ: Mapping[str, str] | None = None) -> str | None:
    """The uv executable to use, or None when uv is not available."""
    environ = os.environ if environ is None else environ
    search = environ.get("PATH", os.defpath)
    with _lock:
        if search in _found:
            return _found[search]
    found = _find_uv(search)
    with _lock:
        _found[search] = found
    return found


def _find_uv(search: str) -> str | None:
    try:
        import uv

        candidate = uv.find_uv_bin()
        if candidate and os.access(candidate, os.X_OK):
            return str(candidate)
    except (ImportError, FileNotFoundError, AttributeError):
        pass
    sibling = Path(sys.executable).parent / ("uv.exe" if os.name == "nt" else "uv")
    if sibling.is_file() and os.access(sibling, os.X_OK):
        return str(sibling)
    on_path = shutil.which("uv", path=search)
    if on_path is None:
        return None
    return _through_shim(on_path) or on_path


def _through_shim(path: str) -> str | None:
    """The binary a pyenv/asdf shim script runs, or None when ``path`` is not such a shim."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(2048)
    except OSError:
        return None
    if not head.startswith(b"#!"):
        return None
    text = head.decode("utf-8", errors="replace")
    for tool in ("pyenv", "asdf"):
        if f"{tool} exec" in text or f"libexec/{tool}" in text:
            try:
                answer = subprocess.run(
                    [tool, "which", Path(path).name], capture_output=True, text=True, timeout=20, check=False
                )
            except (OSError, subprocess.TimeoutExpired):
                return None
            resolved = answer.stdout.strip().splitlines()[-1:] if answer.returncode == 0 else []
            if resolved and os.access(resolved[0], os.X_OK):
                return resolved[0]
    return None


def tool_version(executable: str) -> str:
    """``uv --version`` → ``0.13.9`` (asked once per executable; "" when it cannot be told)."""
    with _lock:
        if executable in _versions:
            return _versions[executable]
    try:
        output = subprocess.run(
            [executable, "--version"], capture_output=True, text=True, timeout=30, check=False
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        output = ""
    match = re.search(r"(\d+\.\d+(?:\.\d+)?)", output)
    version = match.group(1) if match else ""
    with _lock:
        _versions[executable] = version
    return version


def forget() -> None:
    """Drop what was found (tests that change PATH)."""
    with _lock:
        _found.clear()
        _versions.clear()
