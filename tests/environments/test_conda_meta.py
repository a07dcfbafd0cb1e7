"""Reading a conda environment from its conda-meta (no conda needed), and ``task create`` recording
the one it runs in with ``sdk.development.detect_with_conda_freeze``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clearml_core.controlplane import open_control_plane
from clearml_core.environments.conda_meta import describe_environment, is_conda_prefix, read_conda_meta
from tests.helpers import run_cli


def _record(prefix: Path, name: str, version: str, build: str, channel: str, files: list[str]) -> None:
    meta = prefix / "conda-meta"
    meta.mkdir(parents=True, exist_ok=True)
    data = {
        "name": name,
        "version": version,
        "build": build,
        "channel": channel,
        "subdir": "linux-64",
        "files": files,
    }
    (meta / f"{name}-{version}-{build}.json").write_text(json.dumps(data))


def _dist_info(prefix: Path, name: str, version: str) -> str:
    folder = prefix / "lib" / "python3.11" / "site-packages" / f"{name}-{version}.dist-info"
    folder.mkdir(parents=True)
    (folder / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n\n")
    return f"lib/python3.11/site-packages/{name}-{version}.dist-info/METADATA"


@pytest.fixture
def prefix(tmp_path: Path) -> Path:
    """A conda environment as conda leaves it: numpy from conda-forge (with its dist-info), python
    from an older conda's channel URL (with the subdir), and requests installed by pip."""
    root = tmp_path / "env"
    owned = _dist_info(root, "numpy", "1.26.4")
    _record(root, "numpy", "1.26.4", "py311h64a7726_0", "https://conda.anaconda.org/conda-forge/", [owned])
    _record(root, "python", "3.11.7", "hab00c5b_1", "https://conda.anaconda.org/conda-forge/linux-64", [])
    _dist_info(root, "requests", "2.31.0")
    return root


def test_a_prefix_is_read_from_its_conda_meta(prefix: Path) -> None:
    assert is_conda_prefix(prefix) and not is_conda_prefix(prefix.parent)
    records, owned = read_conda_meta(prefix)
    assert [record.pinned() for record in records] == [
        "numpy ==1.26.4 py311h64a7726_0[channel=https://conda.anaconda.org/conda-forge]",
        "python ==3.11.7 hab00c5b_1[channel=https://conda.anaconda.org/conda-forge]",
    ]
    assert owned == {"lib/python3.11/site-packages/numpy-1.26.4.dist-info"}
    text = describe_environment(prefix, comment="demo")
    assert text == (
        "# demo\n"
        "channels:\n"
        '  - "https://conda.anaconda.org/conda-forge"\n'
        "dependencies:\n"
        '  - "numpy ==1.26.4 py311h64a7726_0[channel=https://conda.anaconda.org/conda-forge]"\n'
        '  - "python ==3.11.7 hab00c5b_1[channel=https://conda.anaconda.org/conda-forge]"\n'
        "  - pip:\n"
        '      - "requests==2.31.0"\n'
    )


def test_task_create_records_the_conda_environment_it_runs_in(
    prefix: Path, tmp_path: Path, clearml_home: Path
) -> None:
    folder = tmp_path / "code"
    folder.mkdir()
    (folder / "main.py").write_text("print(1)\n")
    args = ("task", "create", "--name", "t", "--folder", str(folder), "--script", "main.py")
    plain = run_cli(*args, env={"CONDA_PREFIX": str(prefix)})
    assert plain.code == 0, plain.text
    conf = tmp_path / "clearml.conf"
    conf.write_text("sdk.development.detect_with_conda_freeze: true\n")
    recorded = run_cli(*args, env={"CONDA_PREFIX": str(prefix), "CLEARML_CONFIG_FILE": str(conf)})
    assert recorded.code == 0, recorded.text
    outside = run_cli(*args, env={"CONDA_PREFIX": str(tmp_path), "CLEARML_CONFIG_FILE": str(conf)})
    with open_control_plane() as plane:
        assert plane.get_task(plain.out.strip()).requirements.conda == ""  # not asked for
        conda = plane.get_task(recorded.out.strip()).requirements.conda
        assert conda == describe_environment(
            prefix, comment=f"the conda environment {prefix} (sdk.development.detect_with_conda_freeze)"
        )
        assert plane.get_task(outside.out.strip()).requirements.conda == ""  # not a conda environment
