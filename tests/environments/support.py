"""Helpers of the environment tests: tiny wheels built here, local package indexes, configurations.

Nothing here stands in for an installer: the tests run real uv and pip against these wheels and
indexes (a PEP 503 folder read through ``file://``, or an HTTP server on 127.0.0.1 that can be
told to hold a download, for the abort and ``kill -9`` cases).
"""

from __future__ import annotations

import base64
import hashlib
import http.server
import os
import re
import threading
import zipfile
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from clearml_core.config import Config, load_config
from clearml_core.testing.servers import free_port

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


def canonical(name: str) -> str:
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
    """A pure-Python wheel ``name-version-py3-none-any.whl`` whose module says its version."""
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
    assert found, "this Python has no bundled pip wheel"
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
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "".join(f"{key}: {hocon_value(value)}\n" for key, value in settings.items()), encoding="utf-8"
    )
    return load_config(path)


class IndexServer:
    """A simple index over HTTP on 127.0.0.1; ``hold()`` makes wheel downloads wait until ``release()``.

    ``requests`` counts the wheel downloads it served.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.gate = threading.Event()
        self.gate.set()
        self.waiting = threading.Event()
        self.downloads = 0
        server = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, directory=str(root), **kwargs)

            def do_GET(self) -> None:
                if self.path.split("?")[0].endswith(".whl"):
                    server.waiting.set()
                    server.gate.wait(120)
                    server.downloads += 1
                super().do_GET()

            def end_headers(self) -> None:
                self.send_header("Cache-Control", "max-age=600")  # as PyPI does: installers may cache
                super().end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def hold(self) -> None:
        self.waiting.clear()
        self.gate.clear()

    def release(self) -> None:
        self.gate.set()

    def __enter__(self) -> IndexServer:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.gate.set()
        self._httpd.shutdown()
        self._httpd.server_close()


@contextmanager
def serving(root: Path) -> Iterator[IndexServer]:
    with IndexServer(root) as server:
        yield server
