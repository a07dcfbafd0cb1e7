"""The interpreter an environment is built from, and what about it goes into the cache key.

``agent.python_binary`` names it (a path, or a name looked up on ``PATH``); empty means the
interpreter running the agent. An agent that itself runs in a virtual environment builds from that
environment's base interpreter, so a task never inherits the agent's own packages.

Probing an interpreter other than the running one costs a process start (~20 ms), so answers are
kept per process and on disk, keyed by the executable's real path, size and modification time.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from dataclasses import asdict, dataclass
from pathlib import Path

from clearml_core.errors import UserError

_PROBE = r"""
import json, os, platform, sys
libc = ""
try:
    libc = os.confstr("CS_GNU_LIBC_VERSION") or ""
except (AttributeError, ValueError, OSError):
    pass
base = getattr(sys, "_base_executable", "") or sys.executable
if sys.prefix != sys.base_prefix:
    # a virtual environment's python: build from the interpreter it was made from
    cand = os.path.join(sys.base_prefix, "bin", os.path.basename(sys.executable))
    base = cand if os.path.exists(cand) else base
print(json.dumps({
    "executable": os.path.realpath(base),
    "version": platform.python_version(),
    "implementation": sys.implementation.name,
    "platform": sys.platform + "-" + platform.machine().lower() + ("-" + libc.replace(" ", "") if libc else ""),
}))
"""


class PythonNotFoundError(UserError):
    """``agent.python_binary`` names nothing that runs."""


@dataclass(frozen=True)
class PythonInfo:
    """One interpreter, described by what makes environments built from it differ."""

    executable: str
    """Real path of the base interpreter new environments are made from."""
    version: str
    """``3.11.7``."""
    implementation: str
    """``cpython``, ``pypy``."""
    platform: str
    """``linux-x86_64-glibc2.36``: OS, machine and C library, which decide the wheels that fit."""

    def key(self) -> dict[str, str]:
        return asdict(self)


_memo: dict[str, PythonInfo] = {}
_memo_lock = threading.Lock()


def current_python() -> PythonInfo:
    """The interpreter running the agent (its base interpreter when it runs in a venv)."""
    cached = _memo.get("")
    if cached is not None:
        return cached
    import platform

    libc = ""
    with contextlib.suppress(AttributeError, ValueError, OSError):
        libc = os.confstr("CS_GNU_LIBC_VERSION") or ""
    base = getattr(sys, "_base_executable", "") or sys.executable
    if sys.prefix != sys.base_prefix:
        candidate = Path(sys.base_prefix) / "bin" / Path(sys.executable).name
        if candidate.exists():
            base = str(candidate)
    info = PythonInfo(
        executable=os.path.realpath(base),
        version=platform.python_version(),
        implementation=sys.implementation.name,
        platform=f"{sys.platform}-{platform.machine().lower()}"
        + (f"-{libc.replace(' ', '')}" if libc else ""),
    )
    _memo[""] = info
    return info


def find_python(binary: str | None, *, cache_dir: Path | None = None) -> PythonInfo:
    """Describe the interpreter ``binary`` names (``""``/None: the agent's own).

    ``cache_dir`` keeps probe answers between processes. Raises :class:`PythonNotFoundError` with
    what to fix when ``binary`` does not exist or does not run.
    """
    if not binary:
        return current_python()
    path = _locate(binary)
    try:
        status = path.stat()
    except OSError as error:
        raise PythonNotFoundError(
            f"agent.python_binary {binary!r} cannot be used: {error.strerror or error}"
        ) from None
    real = os.path.realpath(path)
    memo_key = f"{real}|{status.st_size}|{status.st_mtime_ns}"
    with _memo_lock:
        cached = _memo.get(memo_key)
    if cached is not None:
        return cached
    info = _read_disk_cache(cache_dir, memo_key)
    if info is None:
        info = _probe(path, binary)
        _write_disk_cache(cache_dir, memo_key, info)
    with _memo_lock:
        _memo[memo_key] = info
    return info


def find_python_version(version: str, *, cache_dir: Path | None = None) -> PythonInfo:
    """An interpreter of ``version`` (``3.11``, ``3.11.7``, ``3``), found as clearml-agent finds the
    one ``--python-version`` asks for: ``python3.11.7``, ``python3.11``, ``python3``, ``python`` on
    ``PATH``, then the agent's own; the first that runs and reports that version."""
    wanted = version.strip().removeprefix("python")
    if not re.fullmatch(r"\d+(\.\d+){0,2}", wanted):
        raise UserError(f"{version!r} is not a Python version; write it like 3.11")
    parts = wanted.split(".")
    names = [f"python{'.'.join(parts[:count])}" for count in range(len(parts), 0, -1)] + ["python"]
    for name in names:
        path = shutil.which(name)
        if path is None:
            continue
        try:
            info = find_python(path, cache_dir=cache_dir)
        except PythonNotFoundError:
            continue  # a shim of a version manager that does not serve this version, say
        if info.version.split(".")[: len(parts)] == parts:
            return info
    own = current_python()
    if own.version.split(".")[: len(parts)] == parts:
        return own
    raise PythonNotFoundError(
        f"no Python {wanted} on this machine: none of {', '.join(names)} on PATH is one, nor the agent's "
        f"own ({own.version}); install it or put it on PATH"
    )


def _locate(binary: str) -> Path:
    expanded = os.path.expanduser(binary)
    if os.sep in expanded or (os.altsep and os.altsep in expanded):
        return Path(expanded)
    found = shutil.which(expanded)
    if found is None:
        raise PythonNotFoundError(
            f"agent.python_binary {binary!r} is not on PATH; give the interpreter's full path "
            "(agent.python_binary: /usr/bin/python3.11) or leave it empty for the agent's own"
        )
    return Path(found)


def _probe(path: Path, binary: str) -> PythonInfo:
    try:
        completed = subprocess.run(
            [str(path), "-I", "-S", "-c", _PROBE],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise PythonNotFoundError(f"agent.python_binary {binary!r} does not run: {error}") from None
    if completed.returncode != 0:
        tail = (completed.stderr or completed.stdout).strip().splitlines()[-1:] or ["no output"]
        raise PythonNotFoundError(
            f"agent.python_binary {binary!r} is not a working Python interpreter: {tail[0]}"
        )
    try:
        data = json.loads(completed.stdout.strip().splitlines()[-1])
        return PythonInfo(**{key: str(data[key]) for key in PythonInfo.__dataclass_fields__})
    except (ValueError, KeyError, IndexError):
        raise PythonNotFoundError(
            f"agent.python_binary {binary!r} did not answer like a Python 3 interpreter"
        ) from None


def _disk_cache(cache_dir: Path | None) -> Path | None:
    return cache_dir / "interpreters.json" if cache_dir is not None else None


def _read_disk_cache(cache_dir: Path | None, key: str) -> PythonInfo | None:
    path = _disk_cache(cache_dir)
    if path is None:
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8")).get(key)
        return PythonInfo(**data) if isinstance(data, dict) else None
    except (OSError, ValueError, TypeError):
        return None


def _write_disk_cache(cache_dir: Path | None, key: str, info: PythonInfo) -> None:
    path = _disk_cache(cache_dir)
    if path is None:
        return
    try:
        try:
            known = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(known, dict):
                known = {}
        except (OSError, ValueError):
            known = {}
        known[key] = info.key()
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
        temporary.write_text(json.dumps(known, sort_keys=True), encoding="utf-8")
        os.replace(temporary, path)
    except OSError:
        pass  # only costs a probe next time
