"""Environments taken as they are: a prepared prefix or a conda-pack archive
(``conda_env_as_base_docker`` / ``CLEARML_CONDA_ENV_PACKAGE``), and conda's base environment
(``use_conda_base_env``)."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest

from clearml_core.environments import RequirementsError
from clearml_core.environments.conda_meta import read_conda_meta
from plugins.pkgmgr_conda.tests.conftest import CondaConfig
from plugins.pkgmgr_conda.tests.support import build_at, conda_task, prepare


@pytest.fixture
def prepared_prefix(conda_config: CondaConfig, tmp_path: Path) -> Path:
    """A conda environment made beforehand: python, pip, tinypkg 1.0."""
    target = tmp_path / "prepared"
    build_at(conda_config(), conda_task("dependencies: ['tinypkg ==1.0']"), target)
    return target


def _names(prefix: Path) -> dict[str, str]:
    return {record.name: record.version for record in read_conda_meta(prefix)[0]}


def test_a_prepared_environment_is_used_as_it_is(
    conda_config: CondaConfig, prepared_prefix: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = _names(prepared_prefix)
    monkeypatch.setenv("CLEARML_CONDA_ENV_PACKAGE", str(prepared_prefix))
    built = prepare(conda_config(), conda_task("dependencies: [alpha]"), tmp_path / "private")
    assert built.env.path == prepared_prefix and built.prepared.source == "private"
    assert any("nothing is installed into it" in line for line in built.lines)
    assert _names(prepared_prefix) == before  # alpha was not installed: the environment is read-only
    assert built.python("import tinypkg; print(tinypkg.VERSION)") == "1.0"
    built.prepared.release()
    assert (prepared_prefix / "bin" / "python").exists()  # never deleted


def test_a_packed_environment_is_unpacked_once_into_the_cache(
    conda_config: CondaConfig, prepared_prefix: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = tmp_path / "env.tar.gz"
    with tarfile.open(archive, "w:gz") as packed:
        packed.add(prepared_prefix, arcname=".")
    monkeypatch.setenv("CLEARML_CONDA_ENV_PACKAGE", str(archive))
    config = conda_config()
    first = prepare(config, conda_task(), tmp_path / "p")
    assert first.prepared.source == "cache-build" and first.env.path != prepared_prefix
    assert first.python("import tinypkg, sys; print(tinypkg.VERSION, sys.prefix)") == f"1.0 {first.env.path}"
    first.prepared.release()
    second = prepare(config, conda_task(), tmp_path / "p")
    assert second.prepared.source == "cache-hit" and second.env.path == first.env.path
    second.prepared.release()


def test_conda_env_as_base_docker_names_a_folder_or_an_archive(
    conda_config: CondaConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLEARML_CONDA_ENV_PACKAGE", str(tmp_path / "nothing-here"))
    with pytest.raises(RequirementsError, match="is neither a conda environment folder nor a packed one"):
        prepare(conda_config(), conda_task(), tmp_path / "p")
    monkeypatch.setenv("CLEARML_CONDA_ENV_PACKAGE", str(tmp_path))
    with pytest.raises(RequirementsError, match="is not a conda environment: it has no conda-meta"):
        prepare(conda_config(), conda_task(), tmp_path / "p")


def test_use_conda_base_env_installs_into_the_base_environment(
    conda_config: CondaConfig, prepared_prefix: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAMBA_ROOT_PREFIX", str(prepared_prefix))
    config = conda_config({"agent.package_manager.use_conda_base_env": True})
    built = prepare(config, conda_task("dependencies: [alpha]"), tmp_path / "private")
    assert built.env.path == prepared_prefix and built.prepared.source == "private"
    names = _names(prepared_prefix)
    assert names["alpha"] == "1.0" and names["tinypkg"] == "1.0"  # what was there is kept where it can be
    assert {"python", "pip"} <= set(names)
    built.prepared.release()
    assert (prepared_prefix / "bin" / "python").exists()


def test_use_conda_base_env_without_a_base_environment_says_what_to_do(
    conda_config: CondaConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("CONDA_EXE", "CONDA_PYTHON_EXE", "MAMBA_ROOT_PREFIX"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CLEARML_USE_CONDA_BASE_ENV", "1")
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(RequirementsError, match="no base conda environment was found"):
        prepare(conda_config(), conda_task("dependencies: [alpha]"), tmp_path / "p")
