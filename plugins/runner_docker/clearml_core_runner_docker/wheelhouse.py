"""The wheels of the running clearml-core, for containers: built on the host once, then mounted.

A container reproduces its task with this same clearml-core, as clearml-agent installs itself in
its containers; here nothing is downloaded for it. The wheelhouse holds a wheel of every
distribution the agent needs inside: clearml-core with its dependencies, the plugins that provide
package managers with theirs, and this plugin (installed without its dependencies: inside, only
:mod:`clearml_core_runner_docker.inner` runs, which needs none of the Docker SDK).

Where the wheels come from:

* a distribution installed from a wheel is packed again from its installed files (its ``RECORD``),
  under the tags its ``WHEEL`` file records, so a compiled one (psutil's ``abi3`` wheel) keeps
  saying which interpreters it fits;
* an editable install (a development checkout) is built from its source folder with ``uv build``
  (or ``pip wheel`` without uv).

The folder is ``<agent.docker_agent_cache>/wheelhouse/<digest>``, where the digest covers every
distribution's name, version and files (for an editable one, its source files' sizes and times),
so a changed checkout gets new wheels and an unchanged one is built once. It is made complete in a
temporary folder and renamed into place under a lock: nothing half-built is ever mounted.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from clearml_core.runners.base import ExecutionError

CORE = "clearml-core"
THIS_PLUGIN = "clearml-core-runner-docker"
_SKIPPED_METADATA = {"INSTALLER", "REQUESTED", "RECORD", "direct_url.json", "uv_cache.json", "uv_build.json"}


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class Wheelhouse:
    path: Path
    digest: str
    requirements: tuple[str, ...]
    """Installed with their dependencies (``clearml-core==0.1.0``, the package-manager plugins)."""
    without_dependencies: tuple[str, ...]
    """Installed alone (this plugin)."""


# -- which distributions ----------------------------------------------------------------------


def _distribution(name: str) -> metadata.Distribution | None:
    try:
        return metadata.distribution(name)
    except metadata.PackageNotFoundError:
        return None


def closure(roots: Iterable[str]) -> list[metadata.Distribution]:
    """``roots`` and every distribution they need here (markers read for this interpreter)."""
    from packaging.requirements import InvalidRequirement, Requirement

    seen: dict[str, metadata.Distribution] = {}
    pending = [canonical(name) for name in roots]
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        dist = _distribution(name)
        if dist is None:
            continue
        seen[name] = dist
        for line in dist.requires or []:
            try:
                requirement = Requirement(line)
            except InvalidRequirement:
                continue
            if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
                continue
            pending.append(canonical(requirement.name))
    return sorted(seen.values(), key=lambda d: canonical(d.metadata["Name"]))


def package_manager_distributions() -> list[str]:
    """The installed distributions that provide package managers (pip and uv at least)."""
    from clearml_core.plugins import get_registry

    registry = get_registry()
    names = set()
    for spec in registry.package_managers():
        info = registry.provider_of(spec)
        if info is not None and info.distribution and info.distribution != CORE:
            names.add(info.distribution)
    return sorted(names)


# -- what they are ----------------------------------------------------------------------------


def source_dir(dist: metadata.Distribution) -> Path | None:
    """The folder an editable (or in-place directory) install points at, else None."""
    text = dist.read_text("direct_url.json")
    if not text:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return None
    url = str(data.get("url", ""))
    if not url.startswith("file://") or "dir_info" not in data:
        return None
    from urllib.parse import unquote, urlparse

    return Path(unquote(urlparse(url).path))


def _package_dir(dist: metadata.Distribution) -> Path | None:
    import importlib.util

    module = canonical(dist.metadata["Name"]).replace("-", "_")
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _tree_fingerprint(folder: Path) -> str:
    digest = hashlib.sha256()
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(
            d for d in dirs if not d.startswith(".") and d not in ("__pycache__", "node_modules")
        )
        for name in sorted(files):
            if name.endswith((".pyc", ".pyo")):
                continue
            try:
                stat = os.stat(os.path.join(root, name))
            except OSError:
                continue
            digest.update(
                f"{os.path.relpath(os.path.join(root, name), folder)}:{stat.st_size}:{stat.st_mtime_ns}\n".encode()
            )
    return digest.hexdigest()


def fingerprint(dist: metadata.Distribution) -> str:
    name = canonical(dist.metadata["Name"])
    source = source_dir(dist)
    if source is not None:
        files = _tree_fingerprint(_package_dir(dist) or source)
        return f"{name}=={dist.version} source {files}"
    record = dist.read_text("RECORD") or ""
    return f"{name}=={dist.version} record {hashlib.sha256(record.encode()).hexdigest()}"


# -- building ---------------------------------------------------------------------------------


def _hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def wheel_tags(dist: metadata.Distribution) -> str:
    """``cp36-abi3-manylinux_2_12_x86_64.manylinux2010_x86_64`` from the ``Tag:`` lines of WHEEL."""
    tags = [
        line.split(":", 1)[1].strip()
        for line in (dist.read_text("WHEEL") or "").splitlines()
        if line.startswith("Tag:")
    ]
    if not tags:
        return "py3-none-any"
    pythons, abis, platforms = ([], [], [])  # type: tuple[list[str], list[str], list[str]]
    for tag in tags:
        python, abi, platform = tag.split("-", 2)
        for values, value in ((pythons, python), (abis, abi), (platforms, platform)):
            if value not in values:
                values.append(value)
    return "-".join(".".join(values) for values in (pythons, abis, platforms))


def repack(dist: metadata.Distribution, out: Path) -> Path:
    """A wheel of ``dist`` made of its installed files (scripts are made again by the installer
    from the entry points; files installed outside site-packages are left out)."""
    name = canonical(dist.metadata["Name"]).replace("-", "_")
    base = Path(str(dist.locate_file("")))
    info_dir = f"{name}-{dist.version}.dist-info"
    wheel = out / f"{name}-{dist.version}-{wheel_tags(dist)}.whl"
    records: list[tuple[str, str, str]] = []
    with zipfile.ZipFile(wheel, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for file in dist.files or []:
            relative = str(file)
            if relative.startswith("..") or "__pycache__" in relative or relative.endswith(".pyc"):
                continue
            parts = Path(relative).parts
            if parts and parts[0].endswith(".dist-info"):
                if parts[-1] in _SKIPPED_METADATA:
                    continue
                target = "/".join((info_dir, *parts[1:]))
            else:
                target = relative
            try:
                data = (base / relative).read_bytes()
            except OSError:
                continue
            archive.writestr(target, data)
            records.append((target, _hash(data), str(len(data))))
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerows(records)
        writer.writerow((f"{info_dir}/RECORD", "", ""))
        archive.writestr(f"{info_dir}/RECORD", buffer.getvalue())
    return wheel


def build_from_source(folder: Path, out: Path) -> Path:
    """A wheel of the project in ``folder``, built by uv (else pip)."""
    from clearml_core_pkgmgr_pip.tools import find_uv

    before = set(out.glob("*.whl"))
    uv = find_uv()
    if uv is not None:
        argv = [uv, "build", "--wheel", "--quiet", "--out-dir", str(out), str(folder)]
    else:
        argv = [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--quiet",
            "--wheel-dir",
            str(out),
            str(folder),
        ]
    completed = subprocess.run(argv, capture_output=True, text=True, timeout=600, check=False)
    made = set(out.glob("*.whl")) - before
    if completed.returncode != 0 or not made:
        reason = (completed.stderr or completed.stdout).strip().splitlines()[-1:] or ["no wheel was made"]
        raise ExecutionError(f"cannot build a wheel of {folder} for the containers: {reason[0]}")
    return made.pop()


_found: dict[Path, Wheelhouse] = {}
"""What :func:`ensure` found, by cache folder: the running version does not change while it runs."""


def ensure(cache_root: Path, log: Callable[[str], None]) -> Wheelhouse:
    """The wheelhouse of the running version, built now if this machine has none yet."""
    known = _found.get(cache_root)
    if known is not None and (known.path / ".complete").exists():
        return known
    result = _ensure(cache_root, log)
    _found[cache_root] = result
    return result


def _ensure(cache_root: Path, log: Callable[[str], None]) -> Wheelhouse:
    from clearml_core.filelocks import ExclusiveFileLock

    install = [CORE, *package_manager_distributions()]
    dists = closure(install)
    alone = _distribution(THIS_PLUGIN)
    if alone is not None:
        dists.append(alone)
    digest = hashlib.sha256("\n".join(fingerprint(d) for d in dists).encode()).hexdigest()[:20]
    versions = {canonical(d.metadata["Name"]): d.version for d in dists}
    result = Wheelhouse(
        path=cache_root / "wheelhouse" / digest,
        digest=digest,
        requirements=tuple(
            f"{name}=={versions[canonical(name)]}" for name in install if canonical(name) in versions
        ),
        without_dependencies=(f"{THIS_PLUGIN}=={alone.version}",) if alone is not None else (),
    )
    if (result.path / ".complete").exists():
        return result
    result.path.parent.mkdir(parents=True, exist_ok=True)
    with ExclusiveFileLock(result.path.parent / f"{digest}.lock"):
        if (result.path / ".complete").exists():
            return result
        log(
            f"building the wheels of clearml-core {versions.get(CORE, '?')} for containers (once per version)"
        )
        scratch = result.path.with_name(f"{digest}.tmp-{os.getpid()}")
        shutil.rmtree(scratch, ignore_errors=True)
        scratch.mkdir()
        try:
            for dist in dists:
                source = source_dir(dist)
                if source is not None:
                    build_from_source(source, scratch)
                else:
                    repack(dist, scratch)
            (scratch / ".complete").write_text(
                "\n".join(fingerprint(d) for d in dists) + "\n", encoding="utf-8"
            )
            shutil.rmtree(result.path, ignore_errors=True)
            scratch.rename(result.path)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    return result


__all__ = ["Wheelhouse", "closure", "ensure", "repack", "wheel_tags"]
