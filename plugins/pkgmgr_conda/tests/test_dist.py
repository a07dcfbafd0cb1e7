"""``pip install 'clearml-core[conda]'`` from the built wheels gives the core and this plugin, and
the installed agent builds a conda environment with them. Slow: it builds wheels and installs
py-rattler from the package index (into uv's usual cache)."""

from __future__ import annotations

from pathlib import Path

import pytest

from plugins.pkgmgr_conda.tests.support import build_at, conda_task
from tests.test_dist_install import Venv, _core_version, _make_venv, dist  # noqa: F401  (the dist fixture)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]


@pytest.fixture(scope="module")
def conda_venv(dist: Path, tmp_path_factory: pytest.TempPathFactory) -> Venv:  # noqa: F811
    where = tmp_path_factory.mktemp("conda-venv")
    home = where / "home"
    home.mkdir()
    venv = _make_venv(where / "venv", f"clearml-core[conda]=={_core_version()}", find_links=[dist])
    return Venv(venv, home)


def test_the_conda_extra_installs_the_core_and_the_plugin(conda_venv: Venv) -> None:
    rows = {row["distribution"]: row for row in conda_venv.json("plugins", "list")}
    assert set(rows) == {"clearml-core", "clearml-core-pkgmgr-pip", "clearml-core-pkgmgr-conda"}
    assert all(row["status"] == "loaded" for row in rows.values()), rows
    assert "package manager conda" in rows["clearml-core-pkgmgr-conda"]["provides"]


def test_the_installed_agent_builds_a_conda_environment(
    conda_venv: Venv, conda_config, conda_channel: Path, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    # an environment to record (built by this checkout), recorded by the installed `task create`
    recorded = tmp_path / "recorded-env"
    build_at(conda_config(), conda_task("dependencies: [alpha]"), recorded)
    conf = conda_venv.home / "clearml.conf"
    conf.write_text(
        "sdk.development.detect_with_conda_freeze: true\n"
        "agent.package_manager.type: conda\n"
        f'agent.package_manager.conda_channels: ["{conda_channel}"]\n'
        "agent.cuda_version: 0\n"
    )
    folder = tmp_path / "code"
    folder.mkdir()
    (folder / "main.py").write_text("import sys, tinypkg\nprint('ran', tinypkg.VERSION, sys.prefix)\n")
    venv = WithEnv(conda_venv, {"CLEARML_CONFIG_FILE": str(conf), "CONDA_PREFIX": str(recorded)})
    task_id = venv.cli(
        "task", "create", "--name", "c", "--folder", str(folder), "--script", "main.py"
    ).stdout.strip()
    venv.cli("agent", "execute", "--id", task_id)
    shown = venv.json("task", "show", task_id)
    assert shown["status"] == "completed", shown
    assert shown["runtime"]["environment"]["manager"] == "conda"
    assert any(line.startswith("alpha ==1.0 0[channel=") for line in shown["requirements"]["frozen"])


class WithEnv(Venv):
    """The venv's CLI with more environment variables."""

    def __init__(self, venv: Venv, extra: dict[str, str]) -> None:
        super().__init__(venv.path, venv.home)
        self.extra = extra

    def env(self) -> dict[str, str]:
        return {**super().env(), **self.extra}
