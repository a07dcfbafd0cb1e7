"""The built wheels install into a fresh venv and work there, with no workspace around them.

``scripts/build-dist.sh`` builds every workspace wheel; a fresh ``uv venv`` installs clearml-core
from them (dependencies from the package index), and the CLI's JSON outputs are checked from that
venv. A second venv installs ``clearml-core[all]`` and a plugin built as a real wheel by this test,
and lists them. Slow: it builds wheels and downloads dependencies (into uv's usual cache).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests import plugin_dists
from tests.test_startup import HEAVY, PROBE, offending

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]

ROOT = Path(__file__).resolve().parents[1]
# Captured at import, before the per-test private HOME: uv keeps its download cache where it
# always does, so only the first run on a machine downloads anything.
_REAL_ENV = dict(os.environ)


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


def _core_version() -> str:
    text = (ROOT / "core" / "clearml_core" / "__init__.py").read_text(encoding="utf-8")
    match = re.search(r'^__version__ = "([^"]+)"', text, flags=re.MULTILINE)
    assert match, "core/clearml_core/__init__.py has no __version__"
    return match.group(1)


def _workspace_distributions() -> set[str]:
    names = {"clearml-core"}
    for pyproject in ROOT.glob("plugins/*/pyproject.toml"):
        match = re.search(r'^name = "([^"]+)"', pyproject.read_text(encoding="utf-8"), flags=re.MULTILINE)
        assert match, f"{pyproject} names no distribution"
        names.add(match.group(1))
    return names


def _default_plugins(dist: Path) -> set[str]:
    """Workspace plugins the core wheel depends on without an extra (the pip/uv manager)."""
    wheel = next(dist.glob("clearml_core-*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        metadata = archive.read(name).decode()
    required = {
        _normalise(re.split(r"[\s;<>=!~\[(]", line.removeprefix("Requires-Dist:").strip())[0])
        for line in metadata.splitlines()
        if line.startswith("Requires-Dist:") and "extra ==" not in line
    }
    return {name for name in _workspace_distributions() if _normalise(name) in required}


def _uv() -> str:
    found = shutil.which("uv", path=_REAL_ENV.get("PATH")) or str(ROOT / ".local" / "uv" / "bin" / "uv")
    assert Path(found).exists(), "uv is not installed; scripts/ensure-uv.sh installs it"
    return found


def _tool_env() -> dict[str, str]:
    env = dict(_REAL_ENV)
    env.pop("VIRTUAL_ENV", None)
    return env


def _run(
    *command: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float = 900
):
    completed = subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        env=env or _tool_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert completed.returncode == 0, (
        f"{' '.join(map(str, command))} exited {completed.returncode}:\n{completed.stdout}\n{completed.stderr}"
    )
    return completed


def _make_venv(where: Path, *requirements: str, find_links: list[Path]) -> Path:
    _run(_uv(), "venv", "--quiet", "--python", sys.executable, where)
    links = [arg for folder in find_links for arg in ("--find-links", str(folder))]
    _run(_uv(), "pip", "install", "--quiet", "--python", where / "bin" / "python", *links, *requirements)
    return where


class Venv:
    """Runs the installed ``clearml-core`` of a venv in a clean environment with a private HOME."""

    def __init__(self, path: Path, home: Path) -> None:
        self.path = path
        self.home = home

    def env(self) -> dict[str, str]:
        keep = {"PATH", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT"}
        env = {key: value for key, value in _REAL_ENV.items() if key in keep}
        env["HOME"] = str(self.home)
        env["PATH"] = f"{self.path / 'bin'}{os.pathsep}{env.get('PATH', '')}"
        return env

    def cli(self, *args: str, expect: tuple[int, ...] = (0,)) -> subprocess.CompletedProcess[str]:
        completed = subprocess.run(
            [str(self.path / "bin" / "clearml-core"), *args],
            cwd=self.home,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert completed.returncode in expect, (
            args,
            completed.returncode,
            completed.stdout,
            completed.stderr,
        )
        return completed

    def json(self, *args: str, expect: tuple[int, ...] = (0,)):
        return json.loads(self.cli(*args, "--json", expect=expect).stdout)

    def python(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.path / "bin" / "python"), *args],
            cwd=self.home,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("build") / "dist"
    _run("bash", ROOT / "scripts" / "build-dist.sh", out, cwd=ROOT)
    return out


@pytest.fixture(scope="module")
def core_venv(dist, tmp_path_factory) -> Venv:
    """clearml-core alone, from the wheels."""
    where = tmp_path_factory.mktemp("core-venv")
    home = where / "home"
    home.mkdir()
    return Venv(_make_venv(where / "venv", f"clearml-core=={_core_version()}", find_links=[dist]), home)


@pytest.fixture(scope="module")
def full_venv(dist, tmp_path_factory) -> Venv:
    """clearml-core[all] from the wheels, plus the test plugin built as a wheel of its own."""
    where = tmp_path_factory.mktemp("full-venv")
    project = plugin_dists.working().write_project(where / "plugin-project")
    return _venv_with_plugin(where, dist, project, f"clearml-core[all]=={_core_version()}")


def _venv_with_plugin(where: Path, dist: Path, project: Path, core: str) -> Venv:
    """A venv under ``where`` with ``core`` from the wheels and the plugin ``project`` built as a wheel."""
    plugin_wheels = where / "plugin-dist"
    _run(_uv(), "build", "--wheel", "--quiet", "--out-dir", plugin_wheels, project)
    name = re.search(r'^name = "([^"]+)"', (project / "pyproject.toml").read_text(encoding="utf-8"), re.M)
    assert name, f"{project} names no distribution"
    home = where / "home"
    home.mkdir()
    venv = _make_venv(where / "venv", core, name.group(1), find_links=[dist, plugin_wheels])
    return Venv(venv, home)


def test_build_dist_makes_one_wheel_per_workspace_distribution(dist):
    wheels = sorted(dist.glob("*.whl"))
    built = {_normalise(wheel.name.split("-")[0]) for wheel in wheels}
    assert built == {_normalise(name) for name in _workspace_distributions()}
    assert all(
        f"-{_core_version()}-" in wheel.name for wheel in wheels if wheel.name.startswith("clearml_core-")
    )


def test_the_installed_cli_reports_its_version(core_venv):
    result = core_venv.cli("--version")
    assert result.stdout.strip() == f"clearml-core {_core_version()}"


def test_the_installed_core_comes_from_the_wheel_not_the_workspace(core_venv):
    located = core_venv.python("-c", "import clearml_core, sys; print(clearml_core.__file__)")
    assert located.returncode == 0, located.stderr
    assert str(core_venv.path) in located.stdout
    assert str(ROOT) not in located.stdout


def test_plugins_list_json_in_a_fresh_venv(core_venv, dist):
    rows = core_venv.json("plugins", "list")
    assert isinstance(rows, list)
    assert all(set(row) == {"name", "distribution", "version", "status", "error", "provides"} for row in rows)
    builtin = next(row for row in rows if row["name"] == "builtin")
    assert builtin["distribution"] == "clearml-core"
    assert builtin["version"] == _core_version()
    assert builtin["status"] == "loaded"
    assert any(item.startswith("config defaults") for item in builtin["provides"])
    installed = {row["distribution"] for row in rows}
    assert installed == {"clearml-core"} | _default_plugins(dist), "only the core and its default plugins"
    assert all(row["status"] == "loaded" for row in rows), rows


def test_config_show_json_in_a_fresh_venv(core_venv):
    tree = core_venv.json("config", "show")
    assert isinstance(tree, dict)
    assert {"sdk", "api", "agent"} <= set(tree), "the defaults files are missing from the wheel"


def test_doctor_json_in_a_fresh_venv(core_venv):
    checks = core_venv.json("doctor", expect=(0, 1))
    assert all(set(check) == {"name", "status", "detail"} for check in checks)
    assert all(check["status"] in {"ok", "warning", "error"} for check in checks)
    by_name = {check["name"]: check for check in checks}
    assert by_name["plugin builtin"]["status"] == "ok"
    assert by_name["configuration"]["status"] == "ok"
    assert "no clearml.conf" in by_name["configuration"]["detail"]


def test_every_plugin_and_a_third_party_wheel_load_in_a_full_install(full_venv):
    rows = {row["distribution"]: row for row in full_venv.json("plugins", "list")}

    expected = _workspace_distributions() | {"clearml-test-memo"}
    assert set(rows) == expected
    assert {name: row["status"] for name, row in rows.items()} == dict.fromkeys(expected, "loaded")
    assert "storage backend memo (memo://)" in rows["clearml-test-memo"]["provides"]

    # The plugin's defaults file travelled inside its wheel.
    assert full_venv.json("config", "show", "memo.setting") == plugin_dists.MEMO_SETTING


def test_plugins_list_imports_no_sdk_with_every_plugin_installed(full_venv):
    probe = full_venv.python("-c", PROBE, json.dumps([["plugins", "list"]]))
    assert probe.returncode == 0, probe.stdout + probe.stderr
    marker = next(line for line in probe.stdout.splitlines() if line.startswith("MODULES "))
    modules = set(json.loads(marker.removeprefix("MODULES ")))
    assert "clearml_test_memo" in modules
    bad = offending(modules, HEAVY)
    assert not bad, f"`plugins list` in a full install imported: {', '.join(bad)}"


@pytest.fixture(scope="module")
def poetry_venv(dist, tmp_path_factory) -> Venv:
    """``clearml-core[poetry]`` from the wheels."""
    where = tmp_path_factory.mktemp("poetry-venv")
    home = where / "home"
    home.mkdir()
    requirement = f"clearml-core[poetry]=={_core_version()}"
    return Venv(_make_venv(where / "venv", requirement, find_links=[dist]), home)


def test_the_poetry_extra_installs_the_core_and_the_poetry_manager(poetry_venv, dist):
    rows = {row["distribution"]: row for row in poetry_venv.json("plugins", "list")}
    assert set(rows) == {"clearml-core", "clearml-core-pkgmgr-poetry"} | _default_plugins(dist)
    assert all(row["status"] == "loaded" for row in rows.values()), rows
    assert any(
        item.startswith("package manager poetry") for item in rows["clearml-core-pkgmgr-poetry"]["provides"]
    )


def test_a_poetry_task_without_the_poetry_plugin_names_the_extra_to_install(core_venv, tmp_path):
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "main.py").write_text("print('never runs')\n")
    (folder / "poetry.lock").write_text('[metadata]\nlock-version = "2.1"\n')
    (core_venv.home / "clearml.conf").write_text("agent.package_manager.type: poetry\n")
    task_id = core_venv.cli("task", "create", "--name", "p", "--folder", str(folder), "--script", "main.py")
    built = core_venv.cli(
        "agent", "build", "--id", task_id.stdout.strip(), "--target", str(tmp_path / "env"), expect=(2,)
    )
    assert "no package manager named 'poetry' is installed" in built.stderr
    assert "pip install 'clearml-core[poetry]'" in built.stderr


KIT_TEST = """\
from clearml_core.testing.environments import PackageManagerContract


class TestTinyManager(PackageManagerContract):
    manager_name = "tiny"
"""


@pytest.fixture(scope="module")
def kit_project(dist, tmp_path_factory) -> tuple[Venv, Path]:
    """A third party's package-manager plugin project, and a venv with it and clearml-core[testing]."""
    where = tmp_path_factory.mktemp("kit-project")
    project = plugin_dists.tiny_manager().write_project(where / "clearml-tiny-pm")
    (project / "tests").mkdir()
    (project / "tests" / "test_contract.py").write_text(KIT_TEST, encoding="utf-8")
    return _venv_with_plugin(where, dist, project, f"clearml-core[testing]=={_core_version()}"), project


def test_the_package_manager_contract_runs_in_a_project_outside_the_repository(kit_project):
    venv, project = kit_project
    assert ROOT not in project.parents
    env = venv.env()
    env["PATH"] = f"{env['PATH']}{os.pathsep}{Path(_uv()).parent}"  # the tiny manager runs uv
    completed = subprocess.run(
        [str(venv.path / "bin" / "python"), "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    output = completed.stdout + completed.stderr
    assert completed.returncode == 0, output
    assert re.search(r"\b6 passed\b", output), output
    assert str(ROOT) not in output, "the kit reached into the repository"


def _readme_install_commands() -> list[list[str]]:
    """The ``pip install …`` lines of README.md's Install section, as argument lists."""
    import shlex

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Install", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, re.S)
    assert block, "README.md's Install section has no bash block"
    lines = [line.split("#", 1)[0].strip() for line in block.group(1).splitlines()]
    return [shlex.split(line) for line in lines if line.startswith("pip install")]


def test_the_readme_install_commands_work_with_the_built_wheels(dist, tmp_path):
    commands = _readme_install_commands()
    assert commands and all("--find-links" in command for command in commands), commands
    assert any(command[-1] == "clearml-core" for command in commands), "the core alone"
    venv = tmp_path / "venv"
    _run(_uv(), "venv", "--quiet", "--python", sys.executable, venv)
    for command in commands:  # as written, run where dist/ is: pip's resolution, uv's speed
        _run(
            _uv(),
            "pip",
            "install",
            "--quiet",
            "--python",
            venv / "bin" / "python",
            *command[2:],
            cwd=dist.parent,
        )
    home = tmp_path / "cli-home"
    home.mkdir()
    rows = {row["distribution"]: row for row in Venv(venv, home).json("plugins", "list")}
    assert {"clearml-core", "clearml-core-pkgmgr-pip"} <= set(rows)
    tomllib = pytest.importorskip("tomllib")
    optional = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    optional = optional["optional-dependencies"]
    extras = [command[-1] for command in commands if command[-1].startswith("clearml-core[")]
    for named in extras:
        for extra in named.removeprefix("clearml-core[").rstrip("]").split(","):
            assert set(optional[extra]) <= set(rows), (extra, sorted(rows))
    assert all(row["status"] == "loaded" for row in rows.values()), rows
