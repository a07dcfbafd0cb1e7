"""The example third-party storage plugin (examples/storage_plugin), installed and put through the kit.

The example is installed the way an installer lays it out — its package plus a ``*.dist-info``
with the entry points its pyproject.toml declares — into a private site folder, so clearml-core
finds it through real entry-point discovery, in this process and in a subprocess.
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from clearml_core.plugins import reset_registry
from clearml_core.storage.backends import driver_for, reset_drivers
from clearml_core.storage.errors import BackendNotInstalledError
from clearml_core.storage.url import parse_url
from tests.helpers import run_cli

tomllib = pytest.importorskip("tomllib")

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "storage_plugin"
PACKAGE = "clearml_dirstore"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A folder holding the example as an installed distribution."""
    project = tomllib.loads((EXAMPLE / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    folder = tmp_path_factory.mktemp("site")
    shutil.copytree(EXAMPLE / PACKAGE, folder / PACKAGE)
    info = folder / f"clearml_dirstore-{project['version']}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n", encoding="utf-8"
    )
    lines = [
        f"[{group}]\n" + "".join(f"{k} = {v}\n" for k, v in eps.items())
        for group, eps in project["entry-points"].items()
    ]
    (info / "entry_points.txt").write_text("\n".join(lines), encoding="utf-8")
    (info / "top_level.txt").write_text(f"{PACKAGE}\n", encoding="utf-8")
    yield folder
    for name in [m for m in sys.modules if m == PACKAGE or m.startswith(PACKAGE + ".")]:
        del sys.modules[name]


@pytest.fixture(autouse=True)
def _installed(site: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.syspath_prepend(str(site))
    reset_registry()
    reset_drivers()
    yield
    reset_registry()
    reset_drivers()


def _load_example_tests():
    spec = importlib.util.spec_from_file_location(
        "example_dirstore_tests", EXAMPLE / "tests" / "test_dirstore.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_example_tests = _load_example_tests()


class TestExamplePluginPassesTheKit(_example_tests.TestDirStore):
    """The example's own conformance test, run here with the example installed."""

    def test_the_driver_came_through_the_entry_point(self, driver) -> None:
        assert type(driver).__module__ == "clearml_dirstore.driver"
        assert type(driver).__name__ == "DirStoreDriver"


def test_the_example_is_small() -> None:
    lines = sum(len(p.read_text(encoding="utf-8").splitlines()) for p in (EXAMPLE / PACKAGE).glob("*.py"))
    assert lines < 80, f"the example plugin grew to {lines} lines of Python"


def test_its_config_defaults_are_merged(clearml_home: Path) -> None:
    from clearml_core.settings import get_config

    assert get_config().get("sdk.storage.dirstore.root") == "~/.clearml-dirstore"


def test_it_stores_under_the_configured_root(clearml_conf: Path, tmp_path: Path) -> None:
    from clearml_core.settings import get_config, reset_config

    root = tmp_path / "dirstore-root"
    clearml_conf.write_text(f'sdk.storage.dirstore.root: "{root}"\n', encoding="utf-8")
    reset_config()
    driver = driver_for("dirstore://models/v1/w.bin", get_config())
    driver.upload_stream(io.BytesIO(b"weights"), parse_url("dirstore://models/v1/w.bin"))
    assert (root / "models" / "v1" / "w.bin").read_bytes() == b"weights"


def test_plugins_list_shows_it(site: Path) -> None:
    env = {"PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    result = run_cli("plugins", "list", "--json", env=env)
    assert result.code == 0, result.text
    rows = {row["name"]: row for row in json.loads(result.out)}
    assert rows["dirstore"]["distribution"] == "clearml-dirstore"
    assert rows["dirstore"]["status"] == "loaded"
    assert any("dirstore://" in item for item in rows["dirstore"]["provides"])


def test_disabled_it_is_an_unknown_scheme(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLEARML_CORE_DISABLE_PLUGINS", "dirstore")
    reset_registry()
    with pytest.raises(BackendNotInstalledError, match="unknown URL scheme 'dirstore://'"):
        driver_for("dirstore://x/y")
