"""Local packages for package-manager tests: tiny wheels, a PEP 503 index, offline installers.

Nothing here stands in for an installer: tests run real pip, uv (or a plugin's own tool) against
wheels built here, served from a folder through ``file://``::

    wheels = [make_wheel(tmp, "tinypkg", "1.0"), make_wheel(tmp, "alpha", "1.0", requires=["tinypkg"])]
    index = make_index(tmp / "simple", wheels)
    offline(monkeypatch, index)        # PIP_INDEX_URL / UV_INDEX_URL point at it, nothing else
    config = make_config(tmp / "clearml.conf", {"agent.venvs_cache.path": str(tmp / "cache")})

:class:`~clearml_core.testing.environments.PackageManagerContract` builds its default
``package_index`` fixture with these.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pytest

    from clearml_core.config import Config

__all__ = [
    "INDEX_VARIABLES",
    "bundled_pip",
    "canonical",
    "hocon_value",
    "make_config",
    "make_index",
    "make_wheel",
    "offline",
]

INDEX_VARIABLES = (
    "PIP_INDEX_URL",
    "PIP_EXTRA_INDEX_URL",
    "PIP_FIND_LINKS",
    "PIP_NO_INDEX",
    "PIP_TRUSTED_HOST",
    "PIP_REQUIRE_VIRTUALENV",
    "UV_INDEX_URL",
    "UV_DEFAULT_INDEX",
    "UV_EXTRA_INDEX_URL",
    "UV_INDEX",
    "UV_FIND_LINKS",
    "UV_NO_INDEX",
    "UV_INDEX_STRATEGY",
    "CUDA_VERSION",
    "CLEARML_CUDA_VERSION",
)
"""Variables of the machine that would send an installer elsewhere than the test's index."""


def canonical(name: str) -> str:
    """A project name as indexes file it (PEP 503): ``Foo_Bar`` → ``foo-bar``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def make_wheel(
    folder: Path,
    name: str,
    version: str = "1.0",
    *,
    requires: Iterable[str] = (),
    module: str | None = None,
    code: str | None = None,
    payload_bytes: int = 0,
) -> Path:
    """A pure-Python wheel ``name-version-py3-none-any.whl`` whose module says its version.

    ``code`` replaces the module's text; ``payload_bytes`` adds a file of random bytes (a big
    download).
    """
    folder.mkdir(parents=True, exist_ok=True)
    module = module or name.replace("-", "_")
    dist = f"{name.replace('-', '_')}-{version}"
    files: dict[str, bytes] = {
        f"{module}/__init__.py": (code if code is not None else f"VERSION = {version!r}\n").encode(),
    }
    if payload_bytes:
        files[f"{module}/payload.bin"] = os.urandom(payload_bytes)
    metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    metadata += "".join(f"Requires-Dist: {req}\n" for req in requires)
    files[f"{dist}.dist-info/METADATA"] = metadata.encode()
    files[f"{dist}.dist-info/WHEEL"] = (
        b"Wheel-Version: 1.0\nGenerator: clearml-core-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    )
    record_lines = []
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record_lines.append(f"{path},sha256={digest},{len(data)}")
    record_lines.append(f"{dist}.dist-info/RECORD,,")
    files[f"{dist}.dist-info/RECORD"] = ("\n".join(record_lines) + "\n").encode()
    wheel = folder / f"{dist}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, data in files.items():
            archive.writestr(path, data)
    return wheel


def bundled_pip() -> Path:
    """The pip wheel that comes with Python (``ensurepip``): pip for an offline index."""
    import ensurepip

    found = sorted((Path(ensurepip.__file__).parent / "_bundled").glob("pip-*.whl"))
    if not found:
        raise RuntimeError("this Python has no bundled pip wheel (ensurepip/_bundled)")
    return found[-1]


def make_index(root: Path, wheels: Iterable[Path]) -> Path:
    """A PEP 503 "simple" index at ``root`` serving ``wheels`` (copied in); returns ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    by_project: dict[str, list[Path]] = {}
    for wheel in wheels:
        by_project.setdefault(canonical(wheel.name.split("-")[0]), []).append(wheel)
    for project, files in by_project.items():
        folder = root / project
        folder.mkdir(parents=True, exist_ok=True)
        links = []
        for wheel in files:
            target = folder / wheel.name
            if not target.exists():
                target.write_bytes(wheel.read_bytes())
            sha = hashlib.sha256(target.read_bytes()).hexdigest()
            links.append(f'<a href="{wheel.name}#sha256={sha}">{wheel.name}</a><br/>')
        (folder / "index.html").write_text(
            "<!DOCTYPE html><html><body>\n" + "\n".join(links) + "\n</body></html>\n", encoding="utf-8"
        )
    projects = sorted(p.name for p in root.iterdir() if p.is_dir())
    (root / "index.html").write_text(
        "<!DOCTYPE html><html><body>\n"
        + "\n".join(f'<a href="{p}/">{p}</a><br/>' for p in projects)
        + "\n</body></html>\n",
        encoding="utf-8",
    )
    return root


def offline(monkeypatch: pytest.MonkeyPatch, index: Path | str | None) -> None:
    """Installers see only ``index`` (a local simple index) and nothing of the machine's pip setup."""
    for name in INDEX_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("UV_NO_CONFIG", "1")
    if index is not None:
        url = index if isinstance(index, str) else Path(index).as_uri()
        monkeypatch.setenv("PIP_INDEX_URL", url)
        monkeypatch.setenv("UV_INDEX_URL", url)


def hocon_value(value: Any) -> str:
    """``value`` written as HOCON (strings quoted, lists bracketed, None as null)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(hocon_value(v) for v in value) + "]"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def make_config(path: Path, settings: Mapping[str, Any]) -> Config:
    """A configuration with ``settings`` (dotted keys) over the defaults, written to ``path``."""
    from clearml_core.settings import load_config

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "".join(f"{key}: {hocon_value(value)}\n" for key, value in settings.items()), encoding="utf-8"
    )
    return load_config(path)
