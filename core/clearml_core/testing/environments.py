"""The package-manager contract suite: subclass it, describe your manager with a few fixtures, done.

Every package manager (pip, uv, conda, poetry, yours) must fit the agent's environment builder and
cache the same way. The suite checks what the protocol promises: the manager is registered under
its name, its requirements and settings hash into a stable fingerprint, ``create`` makes a
working interpreter, ``install`` + ``freeze`` report what was installed, a failure is one
:class:`BuildFailed` sentence, a stop request stops the build, and through the builder the second
use of the same requirements is a cache hit::

    import pytest
    from clearml_core.testing.environments import PackageManagerContract

    class TestPixi(PackageManagerContract):
        manager_name = "pixi"

        @pytest.fixture
        def manager_config(self, tmp_path):
            return load_config(write_conf(tmp_path, type="pixi", channel=LOCAL_CHANNEL))

        @pytest.fixture
        def good_task(self):
            return Task(requirements=Requirements(conda="dependencies: [tinypkg]"))

        @pytest.fixture
        def bad_task(self):
            return Task(requirements=Requirements(conda="dependencies: [no-such-package]"))

        expected_package = "tinypkg"

``manager_config`` must set ``agent.venvs_cache.path`` to a folder of the test and point the
manager at packages the test can install (a local index or channel); ``good_task`` must install
``expected_package``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, ClassVar

import pytest

from clearml_core.environments import BuildAborted, BuildFailed, BuildLog, PackageManager
from clearml_core.environments.builder import EnvironmentBuilder
from clearml_core.environments.protocol import canonical_json


class PackageManagerContract:
    """Subclass with ``manager_name``, ``expected_package`` and the fixtures the module describes."""

    manager_name: ClassVar[str] = ""
    expected_package: ClassVar[str] = ""

    @pytest.fixture
    def manager_config(self) -> Any:
        raise NotImplementedError("provide a manager_config fixture (see clearml_core.testing.environments)")

    @pytest.fixture
    def good_task(self) -> Any:
        raise NotImplementedError("provide a good_task fixture")

    @pytest.fixture
    def bad_task(self) -> Any:
        raise NotImplementedError("provide a bad_task fixture")

    # -- helpers -----------------------------------------------------------------------------
    @staticmethod
    def _log() -> tuple[BuildLog, list[str]]:
        lines: list[str] = []
        return BuildLog(lambda stream, line: lines.append(line)), lines

    def _manager(self, config: Any) -> PackageManager:
        return EnvironmentBuilder(config, cache=None).load_manager(self.manager_name)

    # -- the contract ------------------------------------------------------------------------
    def test_registered_under_its_name(self, manager_config: Any) -> None:
        manager = self._manager(manager_config)
        assert isinstance(manager, PackageManager) and manager.name == self.manager_name

    def test_the_fingerprint_is_stable_and_json_based(self, manager_config: Any, good_task: Any) -> None:
        builder = EnvironmentBuilder(manager_config)
        manager = self._manager(manager_config)
        context = builder.context()
        requirements, settings = manager.requirements(good_task, context), manager.settings(context)
        assert requirements, "good_task must need something installed"
        json.loads(canonical_json({"requirements": requirements, "settings": settings}))
        first = manager.fingerprint(good_task, context)
        assert re.fullmatch(r"[0-9a-f]{16,}", first)
        assert manager.fingerprint(good_task, builder.context()) == first
        assert builder.plan(good_task, context).key == builder.plan(good_task, builder.context()).key

    def test_create_install_freeze(self, manager_config: Any, good_task: Any, tmp_path: Path) -> None:
        builder = EnvironmentBuilder(manager_config, cache=None)
        manager = self._manager(manager_config)
        context = builder.context()
        log, lines = self._log()
        target = tmp_path / "env"
        settings = manager.settings(context)
        env = manager.create(target, context.python, settings, log)
        assert env.path == target and env.python.exists(), lines
        manager.install(env, manager.requirements(good_task, context), settings, log)
        frozen = manager.freeze(env)
        names = {re.split(r"[=@ ]", line, maxsplit=1)[0].lower() for line in frozen}
        assert self.expected_package.lower() in names, frozen
        assert frozen == sorted(frozen, key=lambda line: re.split(r"[=@ ]", line, maxsplit=1)[0].lower())

    def test_a_failure_is_one_sentence(self, manager_config: Any, bad_task: Any, tmp_path: Path) -> None:
        builder = EnvironmentBuilder(manager_config, cache=None)
        log, _lines = self._log()
        with pytest.raises(BuildFailed) as failed:
            builder.build_at(bad_task, builder.context(), log, tmp_path / "env")
        message = str(failed.value)
        assert message and "\n" not in message
        assert not (tmp_path / "env").exists()

    def test_a_stop_request_stops_the_build(
        self, manager_config: Any, good_task: Any, tmp_path: Path
    ) -> None:
        builder = EnvironmentBuilder(manager_config)
        assert builder.cache is not None, "manager_config must set agent.venvs_cache.path"
        log = BuildLog(lambda stream, line: None, should_stop=lambda: "stop requested")
        with pytest.raises(BuildAborted, match="stop requested"):
            builder.prepare(good_task, builder.context(), log, tmp_path / "private")
        assert [entry for entry in builder.cache.entries() if entry.complete] == []

    def test_the_second_use_is_a_cache_hit(self, manager_config: Any, good_task: Any, tmp_path: Path) -> None:
        builder = EnvironmentBuilder(manager_config)
        assert builder.cache is not None, "manager_config must set agent.venvs_cache.path"
        log, _lines = self._log()
        first = builder.prepare(good_task, builder.context(), log, tmp_path / "private")
        try:
            assert first.source == "cache-build" and first.env is not None
        finally:
            first.release()
        second = builder.prepare(good_task, builder.context(), log, tmp_path / "private")
        try:
            assert second.source == "cache-hit" and second.env == first.env
            assert second.frozen == first.frozen
        finally:
            second.release()
