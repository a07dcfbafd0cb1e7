"""The package-manager contract suite: subclass it, name your manager, done.

Every package manager (pip, uv, conda, poetry, yours) must fit the agent's environment builder and
cache the same way. The suite checks what the protocol promises: the manager is registered under
its name, its requirements and settings hash into a stable fingerprint, ``create`` makes a
working interpreter, ``install`` + ``freeze`` report what was installed, a failure is one
:class:`BuildFailed` sentence, a stop request stops the build, and through the builder the second
use of the same requirements is a cache hit.

It runs from any project that has clearml-core installed (``pip install 'clearml-core[testing]'``;
the fixtures below come with it). A manager that installs pip requirement lines needs nothing
more than its name::

    from clearml_core.testing.environments import PackageManagerContract

    class TestTinyManager(PackageManagerContract):
        manager_name = "tiny"

Every fixture has a default that a subclass may override:

* ``package_index`` — a local PEP 503 index (``tinypkg`` 1.0, ``alpha`` 1.0 which needs
  ``tinypkg``, and the pip that comes with Python), and installers limited to it: ``PIP_INDEX_URL``
  and ``UV_INDEX_URL`` point at it, the machine's pip/uv configuration is ignored (see
  :mod:`clearml_core.testing.packages`). A manager with another kind of repository (a conda
  channel) builds its own here and sets what its tool reads.
* ``manager_settings`` — more settings, dotted keys (``{"agent.package_manager.pip_version": []}``).
* ``manager_config`` — the configuration: ``agent.package_manager.type`` = ``manager_name``,
  ``agent.venvs_cache.path``, ``agent.venvs_dir`` and ``agent.pip_download_cache.path`` in the
  test's folder, plus ``manager_settings``; no clearml.conf or HOME of the machine is read
  (``clearml_home``).
* ``good_task`` — a task that installs ``expected_package`` (default: the pip line ``alpha``).
* ``bad_task`` — a task whose install fails (default: the pip line ``no-such-package-xyz``).

A task with a local folder (``Script(folder=…)``) has its code there, as the agent sees it: a
manager that reads a lock file of the repository gets tasks whose folders hold one.

A manager of conda environments, say::

    class TestPixi(PackageManagerContract):
        manager_name = "pixi"
        expected_package = "tinypkg"

        @pytest.fixture
        def package_index(self, tmp_path, monkeypatch):
            channel = make_channel(tmp_path)            # yours
            monkeypatch.setenv("PIXI_CHANNEL", channel)
            return channel

        @pytest.fixture
        def good_task(self):
            return Task(requirements=Requirements(conda="dependencies: [tinypkg]"))

        @pytest.fixture
        def bad_task(self):
            return Task(requirements=Requirements(conda="dependencies: [no-such-package]"))
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, ClassVar

import pytest

from clearml_core.controlplane import Requirements, Task
from clearml_core.environments import BuildAborted, BuildFailed, BuildLog, PackageManager
from clearml_core.environments.builder import EnvironmentBuilder
from clearml_core.environments.protocol import canonical_json
from clearml_core.testing.packages import bundled_pip, make_config, make_index, make_wheel, offline

__all__ = ["PackageManagerContract"]


class PackageManagerContract:
    """Subclass with ``manager_name``; override the fixtures the module describes where needed."""

    manager_name: ClassVar[str] = ""
    """The name your ``PackageManagerSpec`` registers (``agent.package_manager.type``)."""
    expected_package: ClassVar[str] = "alpha"
    """A package ``good_task`` installs: ``freeze`` must list it."""

    @pytest.fixture
    def package_index(self, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Any:
        """A local index of tiny wheels, and installers that see nothing else."""
        wheels = tmp_path_factory.mktemp("kit-wheels")
        built = [
            make_wheel(wheels, "tinypkg", "1.0"),
            make_wheel(wheels, "alpha", "1.0", requires=["tinypkg"]),
            bundled_pip(),
        ]
        index = make_index(tmp_path_factory.mktemp("kit-index") / "simple", built)
        offline(monkeypatch, index)
        return index

    @pytest.fixture
    def manager_settings(self) -> dict[str, Any]:
        """More settings for ``manager_config``, as dotted keys."""
        return {}

    @pytest.fixture
    def manager_config(
        self, clearml_home: Path, tmp_path: Path, package_index: Any, manager_settings: dict[str, Any]
    ) -> Any:
        """The configuration the manager and the builder run with (private caches, the kit's index)."""
        if not self.manager_name:
            raise NotImplementedError("set manager_name in your PackageManagerContract subclass")
        values: dict[str, Any] = {
            "agent.package_manager.type": self.manager_name,
            "agent.venvs_cache.path": str(tmp_path / "venvs-cache"),
            "agent.venvs_dir": str(tmp_path / "venvs-builds"),
            "agent.pip_download_cache.path": str(tmp_path / "download-cache"),
        }
        values.update(manager_settings)
        return make_config(tmp_path / "kit-clearml.conf", values)

    @pytest.fixture
    def good_task(self) -> Any:
        """A task whose environment has ``expected_package`` installed."""
        return Task(requirements=Requirements(pip=[self.expected_package]))

    @pytest.fixture
    def bad_task(self) -> Any:
        """A task whose environment cannot be built."""
        return Task(requirements=Requirements(pip=["no-such-package-xyz"]))

    # -- helpers -----------------------------------------------------------------------------
    @staticmethod
    def _log() -> tuple[BuildLog, list[str]]:
        lines: list[str] = []
        return BuildLog(lambda stream, line: lines.append(line)), lines

    def _manager(self, config: Any) -> PackageManager:
        return EnvironmentBuilder(config, cache=None).load_manager(self.manager_name)

    @staticmethod
    def _context(builder: EnvironmentBuilder, task: Any) -> Any:
        """The build context of ``task``: its folder (``script.folder``) is its code, as in the agent."""
        folder = Path(task.script.folder) if task.script.folder else None
        return builder.context(code_dir=folder, working_dir=folder)

    # -- the contract ------------------------------------------------------------------------
    def test_registered_under_its_name(self, manager_config: Any) -> None:
        manager = self._manager(manager_config)
        assert isinstance(manager, PackageManager) and manager.name == self.manager_name

    def test_the_fingerprint_is_stable_and_json_based(self, manager_config: Any, good_task: Any) -> None:
        builder = EnvironmentBuilder(manager_config)
        manager = self._manager(manager_config)
        context = self._context(builder, good_task)
        requirements, settings = manager.requirements(good_task, context), manager.settings(context)
        assert requirements, "good_task must need something installed"
        json.loads(canonical_json({"requirements": requirements, "settings": settings}))
        first = manager.fingerprint(good_task, context)
        assert re.fullmatch(r"[0-9a-f]{16,}", first)
        assert manager.fingerprint(good_task, self._context(builder, good_task)) == first
        again = self._context(builder, good_task)
        assert builder.plan(good_task, context).key == builder.plan(good_task, again).key

    def test_create_install_freeze(self, manager_config: Any, good_task: Any, tmp_path: Path) -> None:
        builder = EnvironmentBuilder(manager_config, cache=None)
        manager = self._manager(manager_config)
        context = self._context(builder, good_task)
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
            builder.build_at(bad_task, self._context(builder, bad_task), log, tmp_path / "env")
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
            builder.prepare(good_task, self._context(builder, good_task), log, tmp_path / "private")
        assert [entry for entry in builder.cache.entries() if entry.complete] == []

    def test_the_second_use_is_a_cache_hit(self, manager_config: Any, good_task: Any, tmp_path: Path) -> None:
        builder = EnvironmentBuilder(manager_config)
        assert builder.cache is not None, "manager_config must set agent.venvs_cache.path"
        log, _lines = self._log()
        first = builder.prepare(good_task, self._context(builder, good_task), log, tmp_path / "private")
        try:
            assert first.source == "cache-build" and first.env is not None
        finally:
            first.release()
        second = builder.prepare(good_task, self._context(builder, good_task), log, tmp_path / "private")
        try:
            assert second.source == "cache-hit" and second.env == first.env
            assert second.frozen == first.frozen
        finally:
            second.release()
