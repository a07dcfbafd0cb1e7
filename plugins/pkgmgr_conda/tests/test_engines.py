"""Linking engines and stopping: rattler in-process (stopped while it waits for the network), the
explicit environment a conda binary installs, and the binary engine itself where one exists."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from clearml_core_pkgmgr_conda.engines import explicit_file, find_binary

from clearml_core.environments import BuildAborted, BuildFailed, BuildLog
from clearml_core.environments.builder import EnvironmentBuilder
from clearml_core.environments.cache import EnvironmentCache
from plugins.pkgmgr_conda.tests.conftest import CondaConfig
from plugins.pkgmgr_conda.tests.support import build_at, conda_task, prepare
from tests.environments.support import serving
from tests.helpers import wait_for


@pytest.mark.parametrize("held", ["repodata.json", ".tar.bz2"])
def test_a_stop_request_stops_rattler_while_it_waits(
    conda_config: CondaConfig, conda_channel: Path, tmp_path: Path, held: str
) -> None:
    """Stopped while the gateway fetches repodata (the solve) or while packages download (the link)."""
    with serving(conda_channel, held=held, max_age=None) as server:
        config = conda_config({"agent.package_manager.conda_channels": [server.url]})
        server.hold()
        stop = threading.Event()
        builder = EnvironmentBuilder(config)
        log = BuildLog(lambda stream, line: None, should_stop=lambda: "aborted" if stop.is_set() else None)
        outcome: dict[str, BaseException] = {}

        def build() -> None:
            try:
                builder.prepare(conda_task("dependencies: [alpha]"), builder.context(), log, tmp_path / "p")
            except BaseException as error:
                outcome["error"] = error

        thread = threading.Thread(target=build)
        thread.start()
        assert server.waiting.wait(60), "the build never asked the channel"
        stop.set()
        thread.join(30)
        assert not thread.is_alive(), "the stop request did not stop the build"
        assert isinstance(outcome.get("error"), BuildAborted)
        server.release()
    cache = EnvironmentCache.from_config(config)
    assert cache is not None
    assert wait_for(lambda: not [entry for entry in cache.entries() if entry.complete], 10)


def test_the_explicit_environment_lists_each_package_with_its_checksum(
    conda_config: CondaConfig, conda_channel: Path, tmp_path: Path
) -> None:
    from clearml_core_pkgmgr_conda.solver import read_lock_file

    built = build_at(conda_config(), conda_task("dependencies: [alpha]"), tmp_path / "env")
    assert built.env is not None
    locks = list((tmp_path / "downloads" / "conda" / "solves").glob("*.lock"))
    records = read_lock_file(locks[0])
    lines = explicit_file(records).splitlines()
    assert lines[0] == "@EXPLICIT" and len(lines) == 1 + len(records) == 1 + len(built.frozen)
    for record in records:
        assert f"{record.url}#{record.md5.hex()}" in lines
    assert all(line.startswith(conda_channel.as_uri()) for line in lines[1:])


def test_the_binary_engine_needs_a_binary(
    conda_config: CondaConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert find_binary("", str(tmp_path / "empty")) is None
    config = conda_config({"agent.package_manager.conda_engine": "binary"})
    with pytest.raises(
        BuildFailed, match=r"no micromamba, mamba or conda is on PATH; install one, name it in"
    ):
        prepare(config, conda_task("dependencies: [alpha]"), tmp_path / "p")
    named = conda_config(
        {
            "agent.package_manager.conda_engine": "binary",
            "agent.package_manager.conda_binary": "/no/such/conda",
        }
    )
    with pytest.raises(BuildFailed, match=r"conda_binary '/no/such/conda' is not an executable"):
        prepare(named, conda_task("dependencies: [alpha]"), tmp_path / "p")


def test_an_unknown_engine_is_a_configuration_error(conda_config: CondaConfig, tmp_path: Path) -> None:
    from clearml_core.environments import RequirementsError

    with pytest.raises(RequirementsError, match="conda_engine 'pixi' is not one of rattler, binary"):
        prepare(
            conda_config({"agent.package_manager.conda_engine": "pixi"}),
            conda_task("dependencies: [alpha]"),
            tmp_path / "p",
        )


BINARY = find_binary("", None)


@pytest.mark.skipif(BINARY is None, reason="no conda, mamba or micromamba on this machine")
def test_both_engines_make_the_same_environment(conda_config: CondaConfig, tmp_path: Path) -> None:
    task = conda_task("dependencies: [alpha]")
    rattler = build_at(conda_config(), task, tmp_path / "rattler")
    binary = build_at(
        conda_config({"agent.package_manager.conda_engine": "binary"}), task, tmp_path / "binary"
    )
    assert binary.frozen == rattler.frozen
    assert binary.summary["engine"] == "binary"
