"""Local conda channels for tests and benchmarks: tiny packages, a Python, pip, indexed by rattler.

Nothing here stands in for conda: the packages are real ``.tar.bz2`` conda packages, indexed into
a real channel (``rattler.index``), solved and installed by the real code::

    channel = tmp / "channel"
    python_package(channel)                          # the interpreter running this, as a conda package
    pip_package(channel)                             # the pip that comes with it
    make_package(channel, "tinypkg", "1.0")          # importable: tinypkg.VERSION == "1.0"
    make_package(channel, "alpha", "1.0", depends=["tinypkg"])
    index_channel(channel)

The ``python`` package holds no interpreter of its own: its ``bin/python`` is a link to the
interpreter running the tests with a ``pyvenv.cfg`` beside it, so the prefix is that Python's
environment (its own ``site-packages``) the way a virtual environment is. Conda's own Python
packages cannot be had without the network.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import tarfile
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path

from clearml_core.environments.python import current_python
from clearml_core.testing.packages import bundled_pip

__all__ = [
    "index_channel",
    "make_package",
    "pip_package",
    "python_package",
    "python_version",
    "site_packages",
]

TIMESTAMP = 1_700_000_000


def python_version() -> str:
    """``3.11.7``: the version of the interpreter the ``python`` package links to."""
    return current_python().version


def site_packages() -> str:
    """``lib/python3.11/site-packages``: where Python modules go in a prefix of that Python."""
    major, minor = python_version().split(".")[:2]
    return f"lib/python{major}.{minor}/site-packages"


def make_package(
    channel: Path,
    name: str,
    version: str = "1.0",
    build: str = "0",
    *,
    depends: Iterable[str] = (),
    subdir: str = "noarch",
    files: Mapping[str, bytes] | None = None,
    links: Mapping[str, str] | None = None,
    module: bool = True,
    payload_bytes: int = 0,
    build_number: int = 0,
) -> Path:
    """A conda package ``name-version-build.tar.bz2`` in ``channel/subdir``.

    By default it holds a module ``name`` (dashes as underscores) whose ``VERSION`` is ``version``;
    ``files`` (path → bytes) and ``links`` (path → symlink target) add more, ``payload_bytes`` a
    file of that many pseudo-random bytes (a big download).
    """
    content: dict[str, tuple[bytes, int]] = {}
    if module:
        package = name.replace("-", "_")
        content[f"{site_packages()}/{package}/__init__.py"] = (f'VERSION = "{version}"\n'.encode(), 0o644)
    for path, data in (files or {}).items():
        content[path] = (data, 0o755 if path.startswith("bin/") else 0o644)
    if payload_bytes:
        content[f"share/{name}/payload.bin"] = (_payload(name, payload_bytes), 0o644)
    symlinks = dict(links or {})
    paths = [
        {
            "_path": path,
            "path_type": "hardlink",
            "sha256": hashlib.sha256(data).hexdigest(),
            "size_in_bytes": len(data),
        }
        for path, (data, _mode) in sorted(content.items())
    ]
    paths += [{"_path": path, "path_type": "softlink"} for path in sorted(symlinks)]
    index: dict[str, object] = {
        "name": name,
        "version": version,
        "build": build,
        "build_number": build_number,
        "depends": list(depends),
        "subdir": subdir,
        "license": "MIT",
        "timestamp": TIMESTAMP * 1000,
    }
    if subdir == "noarch":
        index["noarch"] = "generic"
    else:
        index["platform"], _, arch = subdir.partition("-")
        index["arch"] = {"64": "x86_64", "aarch64": "aarch64", "arm64": "arm64"}.get(arch, arch)
    metadata = {
        "info/index.json": json.dumps(index).encode(),
        "info/paths.json": json.dumps({"paths": paths, "paths_version": 1}).encode(),
        "info/files": ("\n".join(sorted([*content, *symlinks])) + "\n").encode(),
    }
    folder = channel / subdir
    folder.mkdir(parents=True, exist_ok=True)
    archive = folder / f"{name}-{version}-{build}.tar.bz2"
    with tarfile.open(archive, "w:bz2", compresslevel=1) as tar:
        for path, data in metadata.items():
            _add(tar, path, data, 0o644)
        for path, (data, mode) in content.items():
            _add(tar, path, data, mode)
        for path, target in symlinks.items():
            info = tarfile.TarInfo(path)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            info.mtime = TIMESTAMP
            tar.addfile(info)
    return archive


def _add(tar: tarfile.TarFile, path: str, data: bytes, mode: int) -> None:
    info = tarfile.TarInfo(path)
    info.size = len(data)
    info.mode = mode
    info.mtime = TIMESTAMP
    tar.addfile(info, io.BytesIO(data))


def _payload(seed: str, size: int) -> bytes:
    block = hashlib.sha512(seed.encode()).digest()
    chunks: list[bytes] = []
    total = 0
    while total < size:
        block = hashlib.sha512(block).digest()
        chunks.append(block * 64)
        total += len(chunks[-1])
    return b"".join(chunks)[:size]


def python_package(channel: Path, *, subdir: str | None = None, build: str = "0_clearml") -> Path:
    """A ``python`` package of the running interpreter's version whose ``bin/python`` is that
    interpreter, with a ``pyvenv.cfg`` so the prefix is its environment."""
    from clearml_core_pkgmgr_conda.solver import current_subdir

    python = current_python()
    executable = python.executable
    version = python.version
    major, minor = version.split(".")[:2]
    config = (
        f"home = {Path(executable).parent}\ninclude-system-site-packages = false\nversion = {version}\n"
    ).encode()
    return make_package(
        channel,
        "python",
        version,
        build,
        subdir=subdir or current_subdir(),
        module=False,
        files={"pyvenv.cfg": config, f"{site_packages()}/README.txt": b"conda site-packages\n"},
        links={"bin/python": executable, "bin/python3": "python", f"bin/python{major}.{minor}": "python"},
    )


def pip_package(channel: Path) -> Path:
    """A ``pip`` package holding the pip wheel that comes with Python, installed (with its
    ``*.dist-info``) into the prefix's site-packages."""
    wheel = bundled_pip()
    version = wheel.name.split("-")[1]
    files: dict[str, bytes] = {}
    with zipfile.ZipFile(wheel) as archive:
        for item in archive.infolist():
            if not item.is_dir():
                files[f"{site_packages()}/{item.filename}"] = archive.read(item)
    return make_package(channel, "pip", version, "py_0", module=False, files=files, depends=["python"])


def index_channel(channel: Path) -> Path:
    """Write the channel's ``repodata.json`` files (rattler's indexer); returns ``channel``."""
    from rattler.index import index_fs

    from clearml_core_pkgmgr_conda import aio

    (channel / "noarch").mkdir(parents=True, exist_ok=True)  # every channel has a noarch subdir
    aio.run(lambda: index_fs(channel, write_zst=False, write_shards=False, force=True))
    shutil.rmtree(channel / ".tmp", ignore_errors=True)
    return channel
