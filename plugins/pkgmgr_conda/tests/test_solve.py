"""Solving with real channels: strict priority, a package no channel has, an unsatisfiable spec,
CUDA-gated packages, the cuDNN constraint. Each failure is one sentence and leaves no environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from clearml_core.environments import BuildFailed
from clearml_core.environments.cache import EnvironmentCache
from plugins.pkgmgr_conda.tests.conftest import CondaConfig
from plugins.pkgmgr_conda.tests.support import conda_task, prepare


def _no_entries(config) -> bool:  # type: ignore[no-untyped-def]
    cache = EnvironmentCache.from_config(config)
    return cache is None or not [entry for entry in cache.entries() if entry.complete]


def test_channels_are_solved_in_strict_priority_order(
    conda_config: CondaConfig, conda_channel: Path, second_channel: Path, tmp_path: Path
) -> None:
    task = conda_task("dependencies: [alpha]")
    first = conda_config({"agent.package_manager.conda_channels": [str(conda_channel), str(second_channel)]})
    built = prepare(first, task, tmp_path / "p1")
    # the first channel has tinypkg (2.0): the second's newer 3.0 is not looked at
    assert built.names()["tinypkg"] == f"tinypkg ==2.0 0[channel={conda_channel.as_uri()}]"
    assert built.python("import tinypkg; print(tinypkg.VERSION)") == "2.0"

    swapped = conda_config(
        {"agent.package_manager.conda_channels": [str(second_channel), str(conda_channel)]}
    )
    built = prepare(swapped, task, tmp_path / "p2")
    assert built.names()["tinypkg"] == f"tinypkg ==3.0 0[channel={second_channel.as_uri()}]"
    assert built.names()["alpha"].endswith(f"[channel={conda_channel.as_uri()}]")


def test_an_environment_yml_channel_comes_before_the_configured_ones(
    conda_config: CondaConfig, conda_channel: Path, second_channel: Path, tmp_path: Path
) -> None:
    task = conda_task(f"channels: [{second_channel}]\ndependencies: [alpha]\n")
    built = prepare(conda_config(), task, tmp_path / "p")
    assert built.names()["tinypkg"].startswith("tinypkg ==3.0 0")
    assert built.prepared.summary["channels"] == [second_channel.as_uri(), conda_channel.as_uri()]


def test_a_package_in_no_channel_fails_with_one_reason(
    conda_config: CondaConfig, conda_channel: Path, tmp_path: Path
) -> None:
    config = conda_config()
    with pytest.raises(BuildFailed) as failed:
        prepare(config, conda_task("dependencies: [alpha, no-such-package]"), tmp_path / "p")
    reason = str(failed.value)
    assert "\n" not in reason
    assert reason.startswith("solving the conda environment failed: ")
    assert "No candidates were found for no-such-package" in reason
    assert conda_channel.as_uri() in reason and "agent.package_manager.conda_channels" in reason
    assert _no_entries(config)


def test_an_unsatisfiable_spec_fails_with_one_reason(conda_config: CondaConfig, tmp_path: Path) -> None:
    config = conda_config()
    with pytest.raises(BuildFailed) as failed:
        prepare(config, conda_task("dependencies: ['tinypkg >=5']"), tmp_path / "p")
    reason = str(failed.value)
    assert "\n" not in reason and "tinypkg >=5" in reason
    with pytest.raises(BuildFailed) as conflicting:
        prepare(config, conda_task("dependencies: ['alpha', 'tinypkg >=2', 'tinypkg <2']"), tmp_path / "p")
    assert "\n" not in str(conflicting.value) and "tinypkg" in str(conflicting.value)
    assert _no_entries(config)


def test_a_cuda_gated_package_needs_the_agents_cuda(conda_config: CondaConfig, tmp_path: Path) -> None:
    task = conda_task("dependencies: [gpu-only]")
    with pytest.raises(BuildFailed) as cpu:
        prepare(conda_config(), task, tmp_path / "cpu")
    assert "__cuda >=12" in str(cpu.value) and "agent.cuda_version" in str(cpu.value)
    with pytest.raises(BuildFailed, match="__cuda=11.8=0"):
        prepare(conda_config({"agent.cuda_version": "11.8"}), task, tmp_path / "old")
    built = prepare(conda_config({"agent.cuda_version": "12.2"}), task, tmp_path / "gpu")
    assert "gpu-only" in built.names()


def test_cuda_version_comes_from_the_environment_variable_too(
    conda_config: CondaConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CUDA_VERSION", "12.4")
    built = prepare(
        conda_config({"agent.cuda_version": None}), conda_task("dependencies: [gpu-only]"), tmp_path / "p"
    )
    assert "gpu-only" in built.names()


def test_cudnn_version_constrains_cudnn_where_the_environment_has_it(
    conda_config: CondaConfig, tmp_path: Path
) -> None:
    task = conda_task("dependencies: [with-cudnn]")
    assert prepare(conda_config(), task, tmp_path / "any").names()["cudnn"].startswith("cudnn ==9.1.0 ")
    pinned = prepare(conda_config({"agent.cudnn_version": "8.9"}), task, tmp_path / "pinned")
    assert pinned.names()["cudnn"].startswith("cudnn ==8.9.7 ")
    # without cudnn in the environment the setting adds nothing
    assert (
        "cudnn"
        not in prepare(
            conda_config({"agent.cudnn_version": "8.9"}),
            conda_task("dependencies: [alpha]"),
            tmp_path / "none",
        ).names()
    )
