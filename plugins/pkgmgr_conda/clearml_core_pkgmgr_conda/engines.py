"""What downloads and links a solved environment into its prefix: rattler, or a conda binary.

Both engines install the same solution (the records :mod:`.solver` produced), so they make the
same environment from the same inputs; the cache key does not depend on the engine.

* ``rattler`` (default): in-process, no conda installation needed. Packages are downloaded
  once into the package cache (``<agent.pip_download_cache.path>/conda/pkgs``) and hard-linked
  into each prefix, as conda does. Link scripts (``post-link.sh``) are not run.
* ``binary``: ``conda``, ``mamba`` or ``micromamba`` installs the solution as an explicit
  environment (``@EXPLICIT``: one URL and checksum per package, no solve of its own), with its own
  configuration and package cache (``pkgs_dirs``), and runs link scripts as it does.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from clearml_core.environments import BuildAborted, BuildFailed, BuildLog
from clearml_core.environments.conda_meta import META_FOLDER
from clearml_core_pkgmgr_conda import aio

if TYPE_CHECKING:
    from rattler import RepoDataRecord

BINARIES = ("micromamba", "mamba", "conda")
"""Looked for on PATH, in this order, with ``conda_engine: binary`` and no ``conda_binary``."""


def link_with_rattler(
    prefix: Path,
    records: list[RepoDataRecord],
    package_cache: Path,
    log: BuildLog,
    *,
    keep: set[str] | None = None,
) -> None:
    """Make ``prefix`` hold exactly ``records`` (what it holds already stays where unchanged),
    and the packages named in ``keep`` as they are."""
    from rattler import install

    started = time.monotonic()
    package_cache.mkdir(parents=True, exist_ok=True)
    try:
        aio.run(
            lambda: install(
                records,
                target_prefix=prefix,
                cache_dir=package_cache,
                show_progress=False,
                execute_link_scripts=False,
                ignored_packages=keep or None,
            ),
            log.stop_reason,
        )
    except (BuildFailed, BuildAborted):
        raise
    except Exception as error:
        text = " ".join(str(error).split())
        raise BuildFailed(f"installing the conda packages failed: {text[:500]}") from None
    log.info(f"linked {len(records)} conda packages into {prefix} in {time.monotonic() - started:.2f} s")


def find_binary(configured: str, search_path: str | None) -> str | None:
    """The conda / mamba / micromamba executable: ``configured`` (a path or a name on PATH), else
    the first of :data:`BINARIES` on PATH."""
    if configured.strip():
        expanded = os.path.expanduser(configured.strip())
        if os.sep in expanded:
            return expanded if os.access(expanded, os.X_OK) else None
        return shutil.which(expanded, path=search_path)
    for name in BINARIES:
        found = shutil.which(name, path=search_path)
        if found:
            return found
    return None


def explicit_file(records: list[RepoDataRecord]) -> str:
    """An ``@EXPLICIT`` environment: each package's URL with its md5 (conda's form; sha256 where
    the channel gives no md5, which micromamba and recent conda read)."""
    lines = ["@EXPLICIT"]
    for record in records:
        digest = record.md5.hex() if record.md5 else (record.sha256.hex() if record.sha256 else "")
        lines.append(f"{record.url}#{digest}" if digest else str(record.url))
    return "\n".join(lines) + "\n"


def link_with_binary(
    binary: str, prefix: Path, records: list[RepoDataRecord], environ: dict[str, str], log: BuildLog
) -> None:
    """Install ``records`` into ``prefix`` with ``binary`` (``create`` for a new prefix, else
    ``install`` of what it lacks)."""
    present = installed_files(prefix)
    missing = [record for record in records if str(record.file_name) not in present]
    if not missing:
        return
    verb = "install" if (prefix / META_FOLDER).is_dir() else "create"
    with tempfile.TemporaryDirectory(prefix="clearml-conda-") as scratch:
        spec = Path(scratch) / "explicit.txt"
        spec.write_text(explicit_file(missing), encoding="utf-8")
        argv = [binary, verb, "--yes", "--prefix", str(prefix), "--file", str(spec)]
        result = log.run(argv, env=environ, cwd=Path(scratch), what=Path(binary).name)
    if not result.ok:
        raise BuildFailed(f"{Path(binary).name} {verb} failed: {result.error_summary()}")


def other_packages(prefix: Path, records: list[RepoDataRecord]) -> set[str]:
    """Names of the packages ``prefix`` holds that ``records`` do not name."""
    from clearml_core.environments.conda_meta import read_conda_meta

    wanted = {record.name.normalized for record in records}
    held, _owned = read_conda_meta(prefix)
    return {record.name for record in held if record.name not in wanted}


def installed_files(prefix: Path) -> set[str]:
    """File names (``numpy-1.26.4-py311h_0.conda``) of the packages a prefix holds."""
    import json

    found: set[str] = set()
    folder = prefix / META_FOLDER
    try:
        entries = [entry for entry in os.listdir(folder) if entry.endswith(".json")]
    except OSError:
        return found
    for entry in entries:
        try:
            data = json.loads((folder / entry).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        name = data.get("fn") or Path(str(data.get("url", ""))).name
        if name:
            found.add(str(name))
    return found
