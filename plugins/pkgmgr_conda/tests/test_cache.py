"""The environment cache with conda: keyed on the solution, used in place, solves kept by the
request and the channels' repository data (local files, or a remote copy while it is fresh)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from clearml_core_pkgmgr_conda.testing import index_channel, make_package

from clearml_core.environments import BuildFailed
from clearml_core.environments.cache import EnvironmentCache
from clearml_core.testing.servers import free_port
from plugins.pkgmgr_conda.tests.conftest import CondaConfig
from plugins.pkgmgr_conda.tests.support import conda_task, prepare
from tests.environments.support import IndexServer, serving

ALPHA = "dependencies: [alpha]"


def _solved(lines: list[str]) -> bool:
    return any("solved the conda environment" in line for line in lines)


def _repodata(server: IndexServer) -> list[str]:
    return [path for path in server.paths if "repodata" in path]


def _linked(lines: list[str]) -> bool:
    return any(line.startswith("clearml-core: linked ") for line in lines)


@pytest.fixture
def own_channel(conda_channel: Path, tmp_path: Path) -> Path:
    """A copy of the channel that a test may change."""
    return Path(shutil.copytree(conda_channel, tmp_path / "own-channel"))


def test_a_hit_uses_the_cached_prefix_in_place(conda_config: CondaConfig, tmp_path: Path) -> None:
    config = conda_config()
    first = prepare(config, conda_task(ALPHA), tmp_path / "p")
    module = next(first.env.path.glob("lib/python*/site-packages/alpha/__init__.py"))
    inode = module.stat().st_ino
    first.prepared.release()

    second = prepare(config, conda_task(ALPHA), tmp_path / "p")
    assert (first.prepared.source, second.prepared.source) == ("cache-build", "cache-hit")
    assert second.env.path == first.env.path and module.stat().st_ino == inode  # not copied
    assert second.prepared.frozen == first.prepared.frozen
    assert not _solved(second.lines) and not _linked(second.lines)  # no solve, no install
    second.prepared.release()


def test_the_same_request_reuses_its_solution(conda_config: CondaConfig, tmp_path: Path) -> None:
    first = prepare(conda_config(), conda_task(ALPHA), tmp_path / "p1")
    assert _solved(first.lines)
    # another environment cache (another agent on the machine), the same download cache
    other = conda_config({"agent.venvs_cache.path": str(tmp_path / "other-venvs")})
    second = prepare(other, conda_task(ALPHA), tmp_path / "p2")
    assert second.prepared.source == "cache-build" and not _solved(second.lines)
    assert second.prepared.key == first.prepared.key


def test_a_changed_channel_gives_a_new_key_only_when_the_solution_changes(
    conda_config: CondaConfig, own_channel: Path, tmp_path: Path
) -> None:
    config = conda_config({"agent.package_manager.conda_channels": [str(own_channel)]})
    first = prepare(config, conda_task(ALPHA), tmp_path / "p")
    first.prepared.release()

    make_package(own_channel, "unrelated", "1.0")  # the channel changes, alpha's solution does not
    index_channel(own_channel)
    same = prepare(config, conda_task(ALPHA), tmp_path / "p")
    assert _solved(same.lines)  # the repodata changed: solved again ...
    assert (
        same.prepared.source == "cache-hit" and same.prepared.key == first.prepared.key
    )  # ... same packages
    same.prepared.release()

    make_package(own_channel, "tinypkg", "3.0")  # now the solution changes
    index_channel(own_channel)
    newer = prepare(config, conda_task(ALPHA), tmp_path / "p")
    assert newer.prepared.source == "cache-build" and newer.prepared.key != first.prepared.key
    assert newer.names()["tinypkg"].startswith("tinypkg ==3.0 0")
    newer.prepared.release()


def test_a_remote_channel_is_not_asked_again_while_its_copy_is_fresh(
    conda_config: CondaConfig, conda_channel: Path, tmp_path: Path
) -> None:
    with serving(conda_channel, max_age=600) as server:
        config = conda_config({"agent.package_manager.conda_channels": [server.url.rstrip("/")]})
        first = prepare(config, conda_task(ALPHA), tmp_path / "p1")
        assert _repodata(server) and first.names()["alpha"].endswith(f"[channel={server.url.rstrip('/')}]")
        asked = len(_repodata(server))
        other = conda_config(
            {
                "agent.package_manager.conda_channels": [server.url.rstrip("/")],
                "agent.venvs_cache.path": str(tmp_path / "v2"),
            }
        )
        second = prepare(other, conda_task(ALPHA), tmp_path / "p2")
        assert len(_repodata(server)) == asked  # fresh by max-age: no request at all
        assert not _solved(second.lines) and second.prepared.key == first.prepared.key


def test_a_remote_channel_without_max_age_is_revalidated_and_the_solve_still_reused(
    conda_config: CondaConfig, conda_channel: Path, tmp_path: Path
) -> None:
    with serving(conda_channel, max_age=None) as server:
        config = conda_config({"agent.package_manager.conda_channels": [server.url.rstrip("/")]})
        first = prepare(config, conda_task(ALPHA), tmp_path / "p1")
        asked = len(_repodata(server))
        first.prepared.release()
        second = prepare(config, conda_task(ALPHA), tmp_path / "p1")
        assert len(_repodata(server)) > asked  # asked whether it changed ...
        assert not _solved(second.lines) and second.prepared.source == "cache-hit"  # ... it did not
        second.prepared.release()


def test_a_channel_that_cannot_be_reached_fails_with_one_reason(
    conda_config: CondaConfig, tmp_path: Path
) -> None:
    url = f"http://127.0.0.1:{free_port()}/nowhere"
    config = conda_config({"agent.package_manager.conda_channels": [url]})
    with pytest.raises(BuildFailed) as failed:
        prepare(config, conda_task(ALPHA), tmp_path / "p")
    reason = str(failed.value)
    assert reason.startswith(f"the conda channel {url} cannot be read: ") and "\n" not in reason
    assert "Connection refused" in reason and "agent.package_manager.conda_channels" in reason
    cache = EnvironmentCache.from_config(config)
    assert cache is not None and cache.entries() == []


def test_a_missing_local_channel_fails_with_one_reason(conda_config: CondaConfig, tmp_path: Path) -> None:
    config = conda_config({"agent.package_manager.conda_channels": [str(tmp_path / "no-channel")]})
    with pytest.raises(BuildFailed, match=r"^the conda channel file://.*/no-channel cannot be read: "):
        prepare(config, conda_task(ALPHA), tmp_path / "p")


def test_channel_credentials_stay_out_of_the_record_and_the_log(
    conda_config: CondaConfig, conda_channel: Path, tmp_path: Path
) -> None:
    with serving(conda_channel) as server:
        url = server.url.rstrip("/").replace("http://", "http://agent:s3cr3t-pass@")
        token = f"{url}/t/tok-123456"  # anaconda.org's token form: conda records the channel without it
        built = prepare(
            conda_config({"agent.package_manager.conda_channels": [url]}), conda_task(ALPHA), tmp_path / "p"
        )
        assert built.names()["alpha"].endswith(f"[channel={server.url.rstrip('/')}]")
        assert "s3cr3t" not in " ".join(built.prepared.frozen) + built.text + str(built.prepared.summary)
    from clearml_core.environments.conda_meta import public_channel

    assert public_channel(f"{token}/conda-forge") == f"{server.url}conda-forge"
