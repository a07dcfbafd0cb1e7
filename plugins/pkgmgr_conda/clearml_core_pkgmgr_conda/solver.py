"""Solving a conda request with rattler, and the cache of solutions that keeps it cheap.

A solution depends on the specs, the channels (their order: strict priority), the platform's
subdirs, the virtual packages (``__glibc``, ``__cuda`` …), the constraints and the repository
data of every channel subdir. The solve cache is keyed on all of them, the repository data by its
identity (:mod:`.channels`), so when nothing changed a solution is two small file reads:

    <cache>/solves/<key>.json   the solved packages (name, version, build, channel, …), written last
    <cache>/solves/<key>.lock   the full records, as a rattler lock file (what the installer needs)

A miss (a new request, a channel that changed, a remote copy gone stale) asks rattler's gateway
for the repository data (downloading only what changed, into ``<cache>/repodata``) and solves.
A repository that changed without changing the solution gives the same packages, hence the same
environment key.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from clearml_core.environments import BuildAborted, BuildFailed, BuildLog
from clearml_core.environments.conda_meta import public_channel
from clearml_core.environments.process import mask_urls
from clearml_core.environments.protocol import canonical_json
from clearml_core_pkgmgr_conda import aio
from clearml_core_pkgmgr_conda.channels import RepodataCache, identities

if TYPE_CHECKING:
    from rattler import RepoDataRecord

SOLVE_KEY_VERSION = 1
LOCK_ENVIRONMENT = "default"


@dataclass(frozen=True)
class SolvedPackage:
    """One package of a solution: what identifies the file that will be installed."""

    name: str
    version: str
    build: str
    channel: str
    subdir: str
    file_name: str
    sha256: str

    def pinned(self) -> str:
        """``name ==version build[channel=…]``: the exact match spec."""
        return f"{self.name} =={self.version} {self.build}[channel={self.channel}]"


@dataclass(frozen=True)
class SolveRequest:
    """Everything a solution depends on besides the repository data."""

    specs: tuple[str, ...]
    channels: tuple[str, ...]
    subdirs: tuple[str, ...]
    virtual_packages: tuple[str, ...]
    """``name=version=build`` of each virtual package (``__cuda=12.2=0``)."""
    constraints: tuple[str, ...] = ()
    """Specs a package must meet if it is in the solution, without adding it (cudnn's version)."""
    installed_prefix: str = ""
    """A prefix whose packages the solution should keep where it can (conda's base environment)."""


@dataclass(frozen=True)
class Solution:
    packages: tuple[SolvedPackage, ...]
    lock_file: Path
    """The rattler lock file with the full records (to install them)."""
    cached: bool


# -- virtual packages -------------------------------------------------------------------------
_detected: list[tuple[str, ...]] = []
_detect_lock = threading.Lock()


def virtual_packages(cuda_version: str | None) -> tuple[str, ...]:
    """The machine's virtual packages (detected once per process), with ``__cuda`` from the agent's
    CUDA version (``agent.cuda_version``, ``CUDA_VERSION`` or the driver's) rather than rattler's
    own detection, so the agent's CPU-only and GPU choices hold."""
    with _detect_lock:
        if not _detected:
            from rattler.virtual_package import Override, VirtualPackage, VirtualPackageOverrides

            found = VirtualPackage.detect(VirtualPackageOverrides(cuda=Override.string("")))
            generic = [package.into_generic() for package in found]
            _detected.append(
                tuple(
                    f"{g.name.normalized}={g.version}={g.build_string}"
                    for g in generic
                    if g.name.normalized != "__cuda"
                )
            )
        detected = _detected[0]
    cuda = (f"__cuda={cuda_version}=0",) if cuda_version else ()
    return tuple(sorted(detected + cuda))


# -- the cache ----------------------------------------------------------------------------------
class SolveCache:
    """Solutions by key, under ``root`` (None: nothing is kept, every request is solved)."""

    def __init__(self, root: Path | None) -> None:
        self.root = root

    def get(self, key: str) -> Solution | None:
        if self.root is None:
            return None
        try:
            data = json.loads((self.root / f"{key}.json").read_text(encoding="utf-8"))
            packages = tuple(SolvedPackage(*row) for row in data["packages"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
        lock = self.root / f"{key}.lock"
        return Solution(packages, lock, cached=True) if lock.is_file() else None

    def put(
        self, key: str, records: list[RepoDataRecord], channels: tuple[str, ...], folder: Path
    ) -> Solution:
        """Keep ``records`` under ``key`` (in ``folder`` when the cache is off)."""
        root = self.root or folder
        root.mkdir(parents=True, exist_ok=True)
        lock = root / f"{key}.lock"
        _write_lock_file(lock, records, channels)
        packages = tuple(solved_package(record) for record in records)
        marker = root / f"{key}.json"
        temporary = marker.with_name(f".{marker.name}.{uuid.uuid4().hex[:8]}")
        temporary.write_text(json.dumps({"packages": [list(_row(p)) for p in packages]}), encoding="utf-8")
        os.replace(temporary, marker)  # the lock file is complete before the marker names it
        return Solution(packages, lock, cached=False)


def _row(package: SolvedPackage) -> tuple[str, ...]:
    return (
        package.name,
        package.version,
        package.build,
        package.channel,
        package.subdir,
        package.file_name,
        package.sha256,
    )


def solved_package(record: RepoDataRecord) -> SolvedPackage:
    digest = record.sha256.hex() if record.sha256 else (record.md5.hex() if record.md5 else "")
    return SolvedPackage(
        name=record.name.normalized,
        version=str(record.version),
        build=str(record.build),
        channel=public_channel(str(record.channel or "").rstrip("/")),
        subdir=str(record.subdir),
        file_name=str(record.file_name),
        sha256=digest,
    )


def _write_lock_file(path: Path, records: list[RepoDataRecord], channels: tuple[str, ...]) -> None:
    from rattler import LockChannel, LockFile, LockPlatform

    platform = LockPlatform(current_subdir())
    lock = LockFile([platform])
    for record in records:
        lock.add_conda_package(LOCK_ENVIRONMENT, platform, record)
    lock.set_channels(LOCK_ENVIRONMENT, [LockChannel(url) for url in channels])
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}")
    lock.to_path(temporary)
    os.replace(temporary, path)


def read_lock_file(path: Path) -> list[RepoDataRecord]:
    """The records a solve cache entry holds, in the order the solver gave them."""
    from rattler import LockFile

    environment = LockFile.from_path(path).environment(LOCK_ENVIRONMENT)
    if environment is None:
        raise BuildFailed(f"the conda solution {path} holds no environment; delete it and build again")
    records: list[RepoDataRecord] = []
    for found in environment.conda_repodata_records().values():
        records += found
    return records


def current_subdir() -> str:
    from rattler.platform import Subdir

    return str(Subdir.current())


# -- solving ------------------------------------------------------------------------------------
def solve_key(request: SolveRequest, repodata: dict[str, str]) -> str:
    installed = sorted(_held(Path(request.installed_prefix))) if request.installed_prefix else []
    payload = canonical_json(
        {"v": SOLVE_KEY_VERSION, "request": request, "repodata": repodata, "installed": installed}
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:40]


def solve(
    request: SolveRequest,
    cache: SolveCache,
    *,
    repodata_dir: Path | None,
    scratch: Path,
    log: BuildLog | None,
) -> Solution:
    """The packages ``request`` resolves to: from the cache when nothing it depends on changed,
    else solved now (``BuildFailed`` with one reason when it cannot be)."""
    repodata = RepodataCache(repodata_dir)
    known = identities(request.channels, request.subdirs, repodata)
    if known is not None:
        hit = cache.get(solve_key(request, known))
        if hit is not None:
            return hit
    started = time.monotonic()
    stop = log.stop_reason if log is not None else None
    try:
        solution = aio.run(lambda: _solve(request, cache, repodata_dir, scratch, known), stop)
    except (BuildFailed, BuildAborted):
        raise
    except Exception as error:
        raise BuildFailed(failure_reason(error, request)) from None
    if log is not None and not solution.cached:
        log.info(
            f"solved the conda environment in {time.monotonic() - started:.2f} s: "
            f"{len(solution.packages)} packages from {', '.join(map(public_channel, request.channels))}"
        )
    return solution


async def _solve(
    request: SolveRequest,
    cache: SolveCache,
    repodata_dir: Path | None,
    scratch: Path,
    known: dict[str, str] | None,
) -> Solution:
    from rattler import Channel, ChannelPriority, Gateway, GenericVirtualPackage, SourceConfig
    from rattler import solve as rattler_solve
    from rattler.platform import Subdir

    # the whole repodata.json of each subdir (not shards): its hash is the identity of what we solved against
    gateway = Gateway(
        cache_dir=repodata_dir,
        default_config=SourceConfig(sharded_enabled=False, cache_action="cache-or-fetch"),
    )
    sources = [Channel(url) for url in request.channels]
    if known is None:  # remote repository data missing or stale: the gateway revalidates it first
        await gateway.query(
            sources, [Subdir(name) for name in request.subdirs], _names(request.specs), recursive=False
        )
        fetched = identities(request.channels, request.subdirs, RepodataCache(repodata_dir), fetched=True)
        assert fetched is not None
        known = fetched
        hit = cache.get(solve_key(request, known))
        if hit is not None:
            return hit
    locked = _prefix_records(Path(request.installed_prefix)) if request.installed_prefix else None
    records = await rattler_solve(
        sources=sources,
        locked_packages=locked,
        specs=list(request.specs),
        gateway=gateway,
        platforms=[Subdir(name) for name in request.subdirs],
        virtual_packages=[_virtual(text, GenericVirtualPackage) for text in request.virtual_packages],
        channel_priority=ChannelPriority.Strict,
        constraints=list(request.constraints) or None,
        channel_relations="disabled",
        add_pip_as_python_dependency=True,  # as conda does: a conda Python comes with its pip
    )
    return cache.put(solve_key(request, known), records, request.channels, scratch)


def _held(prefix: Path) -> list[str]:
    return [entry for entry in os.listdir(prefix / "conda-meta") if entry.endswith(".json")]


def _prefix_records(prefix: Path) -> list[Any]:
    from rattler import PrefixRecord

    return [PrefixRecord.from_path(prefix / "conda-meta" / entry) for entry in sorted(_held(prefix))]


def _names(specs: tuple[str, ...]) -> list[str]:
    from clearml_core_pkgmgr_conda.inputs import spec_name

    return [name for name in dict.fromkeys(spec_name(spec) for spec in specs) if name]


def _virtual(text: str, factory: Any) -> Any:
    from rattler import BuildString, PackageName, Version

    name, version, build = text.split("=", 2)
    return factory(PackageName(name), Version(version), BuildString(build))


# -- why it failed ------------------------------------------------------------------------------
_TREE = re.compile(r"[\u2500-\u257f]+")


def failure_reason(error: BaseException, request: SolveRequest) -> str:
    """One sentence for a failed solve: what could not be found or met, or which channel failed;
    no channel's credentials in it."""
    reason = _reason(error, request)
    for url in request.channels:
        reason = reason.replace(url.rstrip("/"), public_channel(url.rstrip("/")))
    return mask_urls(reason)


def _reason(error: BaseException, request: SolveRequest) -> str:
    kind = type(error).__name__
    text = " ".join(_TREE.sub(" ", str(error)).split())
    text = text.removeprefix("Cannot solve the request because of: ").rstrip(".")
    channels = ", ".join(request.channels)
    if kind == "SolverError":
        reason = f"solving the conda environment failed: {text[:600]}"
        if (
            "No candidates were found for" in text
            and "__" not in text.split("No candidates were found for")[-1][:4]
        ):
            reason += f" (in the channels {channels}; check the package names and agent.package_manager.conda_channels)"
        if "__cuda" in text:
            reason += (
                "; __cuda is the machine's CUDA (agent.cuda_version, CUDA_VERSION or the driver's): "
                + (next((v for v in request.virtual_packages if v.startswith("__cuda=")), "none here"))
            )
        return reason
    if kind in ("GatewayError", "FetchRepoDataError", "InvalidChannelError", "IoError"):
        failing = next((url for url in request.channels if url.rstrip("/") in text), "")
        what = f"the conda channel {failing}" if failing else f"a conda channel ({channels})"
        return f"{what} cannot be read: {_cause(text)}; check agent.package_manager.conda_channels and the network"
    if kind in (
        "InvalidMatchSpecError",
        "InvalidPackageNameError",
        "InvalidVersionSpecError",
        "ParseMatchSpecError",
    ):
        return f"a conda requirement is not a valid match spec: {text[:300]}"
    return f"solving the conda environment failed: {kind}: {text[:400]}"


def _cause(text: str) -> str:
    """rattler chains causes with "Caused by:"; the first line says what, the last why."""
    parts = [part.strip() for part in text.split("Caused by:") if part.strip()]
    if len(parts) <= 1:
        return text[:300]
    return f"{parts[0][:200]}: {parts[-1][:200]}"


__all__ = [
    "Solution",
    "SolveCache",
    "SolveRequest",
    "SolvedPackage",
    "current_subdir",
    "failure_reason",
    "read_lock_file",
    "solve",
    "virtual_packages",
]
