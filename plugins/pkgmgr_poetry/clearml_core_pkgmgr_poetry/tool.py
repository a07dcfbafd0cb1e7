"""Poetry itself, for the locks uv cannot reproduce: on ``PATH``, or in a tool environment of the cache.

``agent.package_manager.poetry_version`` says which Poetry (``"<2"``, ``"==1.8.3"``, ``"1.8.3"``);
unset or empty, a ``poetry`` on ``PATH`` is used as it is (as clearml-agent does), else the latest.
A Poetry that must be installed goes into a virtual environment of the agent's environment cache,
keyed on that version and the agent's interpreter, built once under the cache's lock and leased
while it runs; without a cache it is built in a temporary folder for this one install.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from clearml_core.environments import BuildFailed, BuildLog, PythonEnv, freeze_environment
from clearml_core.environments.cache import EnvironmentCache, environment_key
from clearml_core.environments.python import current_python

VERSION_SETTING = "agent.package_manager.poetry_version"
TOOL = "poetry-tool"
"""The "manager" of a tool environment's cache key: no task environment has this name."""


def poetry_requirement(version: Any) -> str:
    """``poetry_version`` as a requirement: ``"1.8.3"`` → ``poetry==1.8.3``; ``"<2"`` → ``poetry<2``;
    null or ``""`` → ``""`` (any Poetry)."""
    text = "" if version is None else str(version).replace(" ", "")
    if not text:
        return ""
    if text[0].isdigit():
        text = "==" + text
    return f"poetry{text}"


@contextlib.contextmanager
def poetry_executable(
    requirement: str,
    *,
    cache: EnvironmentCache | None,
    uv: str,
    download_cache: str,
    environ: Mapping[str, str],
    log: BuildLog,
) -> Iterator[str]:
    """The ``poetry`` to run, held (leased) until the block ends."""
    if not requirement:
        found = shutil.which("poetry", path=environ.get("PATH", os.defpath))
        if found:
            log.info(f"using the poetry on PATH ({found}; {VERSION_SETTING} names no version)")
            yield found
            return
        requirement = "poetry"
    python = current_python()
    if cache is None:
        with tempfile.TemporaryDirectory(prefix="clearml-poetry-") as scratch:
            env = _build(Path(scratch) / "poetry", requirement, python.executable, uv, download_cache, log)
            yield str(env.bin_dir / "poetry")
        return
    fingerprint = hashlib.sha256(requirement.encode()).hexdigest()
    key = environment_key(TOOL, fingerprint, python)
    lease = cache.lookup(key)
    if lease is None:
        log.info(f"installing {requirement} into a tool environment of the environment cache")
        lease = cache.acquire(
            key,
            lambda path, _fd: _metadata(
                _build(path, requirement, python.executable, uv, download_cache, log), requirement
            ),
            should_stop=log.stop_reason,
            on_wait=lambda: log.info(f"another task is installing {requirement}; waiting for it"),
        )
    with lease:
        yield str(lease.env.bin_dir / "poetry")


def _metadata(env: PythonEnv, requirement: str) -> dict[str, Any]:
    return {"manager": TOOL, "frozen": freeze_environment(env), "summary": {"tool": requirement}}


def _build(
    target: Path, requirement: str, python: str, uv: str, download_cache: str, log: BuildLog
) -> PythonEnv:
    """A virtual environment at ``target`` with ``requirement`` installed; BuildFailed says why not."""
    env = PythonEnv(target)
    cache_args = ["--cache-dir", download_cache] if download_cache else ["--no-cache"]
    environ = {key: value for key, value in os.environ.items() if key != "VIRTUAL_ENV"}
    environ["UV_PYTHON_DOWNLOADS"] = "never"
    if uv:
        steps = [
            [uv, "venv", "--quiet", "--python", python, *cache_args, str(target)],
            [uv, "pip", "install", "--python", str(env.python), *cache_args, requirement],
        ]
    else:
        steps = [
            [python, "-m", "venv", str(target)],
            [str(env.python), "-m", "pip", "install", "--disable-pip-version-check", requirement],
        ]
    for argv in steps:
        result = log.run(argv, env=environ, cwd=target.parent if target.parent.exists() else None)
        if not result.ok:
            raise BuildFailed(
                f"installing {requirement} ({VERSION_SETTING}) failed: {result.error_summary()}"
            )
    return env
