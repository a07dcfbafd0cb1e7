"""ClearML's own ``clearml`` (or ``clearml-agent``) package in a virtual environment of its own, to
compare behaviour with.

The tests that check clearml-core against ClearML (marked slow) and ``benchmarks/storage_local.py``
build it the same way: ``uv venv`` + ``uv pip install clearml`` into a folder, once, then reuse it
(a marker file says the install finished; a lock keeps two test processes from building it at
once). The project's environment never holds ClearML. :func:`clearml_env` gives a ClearML process
a private HOME whose clearml.conf points at no server: ClearML's storage code runs offline.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

CLEARML_REQUIREMENT = "clearml>=2,<3"
CLEARML_AGENT_REQUIREMENT = "clearml-agent>=2"

CLEARML_CONF = """\
api {
  api_server: "http://127.0.0.1:9"
  web_server: "http://127.0.0.1:9"
  files_server: "http://127.0.0.1:9"
  credentials { access_key: "side-by-side", secret_key: "side-by-side" }
}
"""

# Captured at import, before a test's private HOME: uv and pip keep their download caches where
# they always do, so only the first build on a machine downloads anything.
_REAL_ENV = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHONPATH"))}


class SideEnvError(RuntimeError):
    """ClearML's environment could not be built or a command in it failed."""


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def clearml_python(
    venv: Path, *, install: bool = True, packages: Sequence[str] = (CLEARML_REQUIREMENT,)
) -> Path:
    """The interpreter of ``venv``, installing ``packages`` there on first use."""
    python = venv / "bin" / "python"
    marker = venv / ".installed"
    if not marker.exists() and python.exists():
        with contextlib.suppress(SideEnvError):  # an environment made before the marker existed
            marker.write_text(installed_version(python, packages[0]))
    if marker.exists():
        return python
    if not install:
        raise SideEnvError(f"no ClearML environment at {venv}; build it first (without --no-install)")
    with _locked(venv.parent / f".{venv.name}.lock"):
        if marker.exists():  # another process built it while we waited
            return python
        shutil.rmtree(venv, ignore_errors=True)  # a build that was interrupted
        print(f"installing {' '.join(packages)} into {venv} (once) …", file=sys.stderr)
        uv = _REAL_ENV.get("UV") or shutil.which("uv", path=_REAL_ENV.get("PATH"))
        if uv:
            steps = [
                [uv, "venv", "-q", "--python", sys.executable, str(venv)],
                [uv, "pip", "install", "-q", "--python", str(python), *packages],
            ]
        else:
            steps = [
                [sys.executable, "-m", "venv", str(venv)],
                [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", *packages],
            ]
        for step in steps:
            done = subprocess.run(step, capture_output=True, text=True, env=_REAL_ENV, check=False)
            if done.returncode != 0:
                raise SideEnvError(f"{' '.join(step)} failed:\n{done.stdout}{done.stderr}")
        marker.write_text(installed_version(python, packages[0]))
    return python


def installed_version(python: Path, requirement: str = CLEARML_REQUIREMENT) -> str:
    """The version of ``requirement``'s distribution installed in ``python``'s environment."""
    name = re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0]
    return run_clearml(python, f"import importlib.metadata as m; print(m.version({name!r}))").strip()


def clearml_env(home: Path, conf: str = "") -> dict[str, str]:
    """The environment of a ClearML process: ``home`` as HOME, holding a clearml.conf (plus ``conf``)."""
    home.mkdir(parents=True, exist_ok=True)
    (home / "clearml.conf").write_text(CLEARML_CONF + conf, encoding="utf-8")
    env = {k: v for k, v in _REAL_ENV.items() if not k.startswith(("CLEARML", "PYTHON"))}
    env["HOME"] = str(home)
    env["CLEARML_OFFLINE_MODE"] = "1"  # no server to talk to; storage works offline
    return env


def run_clearml(
    python: Path, code: str, *args: str, env: Mapping[str, str] | None = None, timeout: float = 600
) -> str:
    """Run ``code`` with ClearML's interpreter; its standard output, or :class:`SideEnvError`."""
    done = subprocess.run(
        [str(python), "-c", code, *args],
        capture_output=True,
        text=True,
        env=dict(env) if env is not None else _REAL_ENV,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise SideEnvError(f"ClearML's side failed ({done.returncode}):\n{done.stderr[-4000:]}")
    return done.stdout
