"""The plugin machinery: discovery, isolation of broken plugins, clashes, disabling, the facade.

The CLI tests install small plugin distributions (tests/plugin_dists.py) into a folder on the
subprocess's PYTHONPATH; the unit tests build a :class:`PluginRegistry` by hand.
"""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from clearml_core import (
    ControlPlaneSpec,
    CredentialResolverSpec,
    ExecutionEnvSpec,
    PackageManagerSpec,
    StorageBackendSpec,
    hookimpl,
)
from clearml_core.errors import NotFoundError, PluginError, UserError
from clearml_core.plugins import PluginRegistry, disabled_plugin_names
from tests import plugin_dists
from tests.helpers import Result, run_cli
from tests.plugin_dists import CLASH_KINDS, MEMO_SETTING, PluginDist


def _listing(result: Result) -> dict[str, dict]:
    rows = json.loads(result.out)
    return {row["distribution"]: row for row in rows}


def _cli(site: Path, *dists: PluginDist, args: tuple[str, ...], env: dict[str, str] | None = None) -> Result:
    environ = plugin_dists.install(site, *dists)
    environ.update(env or {})
    return run_cli(*args, env=environ)


# -- listing ------------------------------------------------------------------------------------------


def test_plugins_list_json_describes_each_plugin(tmp_path):
    result = _cli(tmp_path / "site", plugin_dists.working(), args=("plugins", "list", "--json"))

    assert result.code == 0, result.text
    rows = _listing(result)
    memo = rows["clearml-test-memo"]
    assert memo == {
        "name": "memo",
        "distribution": "clearml-test-memo",
        "version": "1.2.3",
        "status": "loaded",
        "error": None,
        "provides": [
            "storage backend memo (memo://)",
            "package manager memo-pm",
            "config defaults defaults.conf",
        ],
    }
    core = rows["clearml-core"]
    assert (core["name"], core["status"]) == ("builtin", "loaded")
    assert "clearml-test" not in result.err


def test_plugins_list_table_has_one_row_per_plugin(tmp_path):
    result = _cli(tmp_path / "site", plugin_dists.working(), args=("plugins", "list"))

    assert result.code == 0, result.text
    header, *rows = result.out.splitlines()
    assert header.split() == ["NAME", "DISTRIBUTION", "VERSION", "STATUS", "PROVIDES"]
    memo = next(row for row in rows if row.startswith("memo "))
    assert memo.split()[:4] == ["memo", "clearml-test-memo", "1.2.3", "loaded"]
    assert "storage backend memo (memo://)" in memo


def test_the_working_plugin_adds_its_config_defaults(tmp_path):
    result = _cli(
        tmp_path / "site", plugin_dists.working(), args=("config", "show", "memo.setting", "--json")
    )

    assert result.code == 0, result.text
    assert json.loads(result.out) == MEMO_SETTING


# -- a broken plugin is reported and skipped -------------------------------------------------------

BROKEN_KINDS = {
    "raises at import": (plugin_dists.broken, "RuntimeError: clearml-test-broken explodes at import"),
    "missing module": (
        plugin_dists.missing_module,
        "ModuleNotFoundError: No module named 'clearml_test_not_installed'",
    ),
    "hook raises": (
        plugin_dists.hook_raises,
        "clearml_package_managers: ValueError: clearml-test-raising hook fails",
    ),
    "unknown hook": (plugin_dists.unknown_hook, "unknown hook 'clearml_bogus'"),
}


@pytest.mark.parametrize("kind", BROKEN_KINDS)
def test_a_broken_plugin_is_listed_with_its_error_and_the_rest_works(tmp_path, kind):
    make, error = BROKEN_KINDS[kind]
    bad = make()
    site = tmp_path / "site"
    listing = _cli(site, bad, plugin_dists.working(), args=("plugins", "list", "--json"))

    assert listing.code == 0, listing.text
    rows = _listing(listing)
    row = rows[bad.distribution]
    assert (row["name"], row["version"], row["status"]) == (bad.entry_point, bad.version, "failed")
    assert error in row["error"]
    assert rows["clearml-test-memo"]["status"] == "loaded"
    # Other plugins of the environment may warn too; this one warns once.
    warnings = [line for line in listing.err.splitlines() if bad.distribution in line]
    assert len(warnings) == 1, listing.err
    assert warnings[0].startswith("warning:")
    assert bad.distribution in warnings[0]
    assert bad.version in warnings[0]
    assert error in warnings[0]
    assert "Traceback" not in listing.err

    # The working plugin next to it still contributes its defaults.
    shown = run_cli("config", "show", "memo.setting", env={"PYTHONPATH": str(site)})
    assert shown.code == 0, shown.text
    assert shown.out.strip() == f'memo.setting: "{MEMO_SETTING}"'
    assert bad.distribution in shown.err


def test_a_plugin_that_fails_is_an_error_in_doctor(tmp_path):
    result = _cli(tmp_path / "site", plugin_dists.broken(), args=("doctor", "--json"))

    checks = {check["name"]: check for check in json.loads(result.out)}
    assert checks["plugin broken"]["status"] == "error"
    assert "explodes at import" in checks["plugin broken"]["detail"]
    assert result.code == 1


# -- two plugins claiming one name -----------------------------------------------------------------


def _assert_one_clash_message(result: Result, first: str, second: str) -> None:
    assert result.code == 2, result.text
    assert "Traceback" not in result.text
    errors = [line for line in result.err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.err
    assert first in errors[0]
    assert second in errors[0]


# For each kind of clash: what a user does that needs the clashing name (a CLI command, with extra
# environment), and the in-process lookup of that name.
_USE_CLASHING = {
    "backend": (("storage", "ls", "twin-a://bucket/"), {}, lambda r: r.storage_backend_for("twin-a")),
    "scheme": (("storage", "ls", "twin://bucket/"), {}, lambda r: r.storage_backend_for("twin")),
    "package_manager": (None, {}, lambda r: r.package_manager("twin")),
    "execution_environment": (None, {}, lambda r: r.execution_environment("twin")),
    "control_plane": (
        ("queue", "list"),
        {"CLEARML_AGENT__AGENT__CONTROL_PLANE": "twin://somewhere"},
        lambda r: r.control_plane_for("twin"),
    ),
}


@pytest.mark.parametrize("kind", CLASH_KINDS)
def test_two_plugins_claiming_one_name_break_only_that_name(tmp_path, kind):
    first, second = plugin_dists.clashing(kind)
    site = tmp_path / "site"
    result = _cli(site, first, second, plugin_dists.working(), args=("plugins", "list", "--json"))

    # The listing works and shows the clash, naming both distributions.
    assert result.code == 0, result.text
    rows = _listing(result)
    for dist in (first, second):
        assert rows[dist.distribution]["status"] == "conflict"
        assert first.distribution in rows[dist.distribution]["error"]
        assert second.distribution in rows[dist.distribution]["error"]
        assert "'twin'" in rows[dist.distribution]["error"]
    assert rows["clearml-test-memo"]["status"] == "loaded"
    warnings = [line for line in result.err.splitlines() if line.startswith("warning:") and "twin" in line]
    assert len(warnings) == 1, result.err

    # Everything else keeps working: the other plugin's defaults, the core's storage.
    shown = run_cli("config", "show", "memo.setting", "--json", env={"PYTHONPATH": str(site)})
    assert shown.code == 0, shown.text
    assert json.loads(shown.out) == MEMO_SETTING
    listed = run_cli("storage", "ls", (tmp_path / "site").as_uri(), env={"PYTHONPATH": str(site)})
    assert listed.code == 0, listed.text

    # Using the clashing name fails with one message naming both distributions.
    args, env, _lookup = _USE_CLASHING[kind]
    if args is not None:
        used = run_cli(*args, env={"PYTHONPATH": str(site), **env})
        _assert_one_clash_message(used, first.distribution, second.distribution)

    # doctor shows it as an error of both plugins.
    doctor = run_cli("doctor", "--json", env={"PYTHONPATH": str(site)})
    checks = {check["name"]: check for check in json.loads(doctor.out)}
    for dist in (first, second):
        check = checks[f"plugin {dist.entry_point}"]
        assert check["status"] == "error" and second.distribution in check["detail"]
    assert checks["plugin memo"]["status"] == "ok"

    # Disabling one of them, as the message suggests, resolves it.
    resolved = run_cli(
        "plugins",
        "list",
        "--json",
        env={"PYTHONPATH": str(site), "CLEARML_CORE_DISABLE_PLUGINS": second.entry_point},
    )
    assert resolved.code == 0, resolved.text
    rows = _listing(resolved)
    assert rows[first.distribution]["status"] == "loaded"
    assert rows[second.distribution]["status"] == "disabled"


@pytest.mark.parametrize("kind", CLASH_KINDS)
def test_looking_up_a_clashing_name_raises_naming_both(tmp_path, monkeypatch, kind, forget_test_modules):
    first, second = plugin_dists.clashing(kind)
    site = tmp_path / "site"
    plugin_dists.install(site, first, second, plugin_dists.working())
    monkeypatch.syspath_prepend(str(site))
    registry = PluginRegistry()

    _args, _env, lookup = _USE_CLASHING[kind]
    with pytest.raises(PluginError) as clash:
        lookup(registry)
    assert first.distribution in str(clash.value) and second.distribution in str(clash.value)
    assert registry.storage_backend_for("memo") is not None
    assert registry.package_manager("memo-pm").name == "memo-pm"
    assert registry.storage_backend_for("file") is not None
    assert registry.control_plane_for("sqlite") is not None
    assert registry.execution_environment("venv").name == "venv"


def test_two_distributions_installing_one_entry_point_name(tmp_path):
    first, second = plugin_dists.same_entry_point()
    site = tmp_path / "site"
    result = _cli(site, first, second, plugin_dists.working(), args=("plugins", "list", "--json"))

    assert result.code == 0, result.text
    rows = _listing(result)
    for dist in (first, second):
        row = rows[dist.distribution]
        assert (row["name"], row["status"]) == ("twin", "conflict")
        assert "entry point 'twin'" in row["error"]
        assert first.distribution in row["error"] and second.distribution in row["error"]
    assert rows["clearml-test-memo"]["status"] == "loaded"
    assert "entry point 'twin'" in result.err

    # Everything else keeps working.
    shown = run_cli("config", "show", "memo.setting", env={"PYTHONPATH": str(site)})
    assert shown.code == 0, shown.text

    # Both share the entry point name, so the distribution name picks which one to turn off.
    resolved = run_cli(
        "plugins",
        "list",
        "--json",
        env={"PYTHONPATH": str(site), "CLEARML_CORE_DISABLE_PLUGINS": first.distribution},
    )
    assert resolved.code == 0, resolved.text
    rows = _listing(resolved)
    assert first.distribution not in rows or rows[first.distribution]["status"] == "disabled"
    assert rows[second.distribution]["status"] == "loaded"


# -- CLEARML_CORE_DISABLE_PLUGINS --------------------------------------------------------------------


@pytest.mark.parametrize("disable", ["memo", "clearml-test-memo", "*", " broken , memo "])
def test_disabled_plugins_are_listed_and_contribute_nothing(tmp_path, disable):
    site = tmp_path / "site"
    env = {"CLEARML_CORE_DISABLE_PLUGINS": disable}
    result = _cli(
        site, plugin_dists.working(), plugin_dists.broken(), args=("plugins", "list", "--json"), env=env
    )

    assert result.code == 0, result.text
    rows = _listing(result)
    assert rows["clearml-test-memo"]["status"] == "disabled"
    assert rows["clearml-test-memo"]["provides"] == []
    assert rows["clearml-core"]["status"] == "loaded"
    if disable != "memo" and disable != "clearml-test-memo":
        assert rows["clearml-test-broken"]["status"] == "disabled"
        assert "clearml-test" not in result.err

    shown = run_cli("config", "show", "memo.setting", env={"PYTHONPATH": str(site), **env})
    assert shown.code == 2, shown.text
    assert "no configuration key 'memo.setting'" in shown.err


def test_disabling_the_broken_plugin_silences_its_warning(tmp_path):
    env = {"CLEARML_CORE_DISABLE_PLUGINS": "broken"}
    result = _cli(
        tmp_path / "site", plugin_dists.working(), plugin_dists.broken(), args=("plugins", "list"), env=env
    )

    assert result.code == 0, result.text
    assert "clearml-test" not in result.err


def test_disabled_plugin_names_parses_the_variable():
    assert disabled_plugin_names({"CLEARML_CORE_DISABLE_PLUGINS": " a, b ,,c-d "}) == {"a", "b", "c-d"}
    assert disabled_plugin_names({"CLEARML_CORE_DISABLE_PLUGINS": "*"}) == {"*"}
    assert disabled_plugin_names({}) == set()


# -- in-process discovery ----------------------------------------------------------------------------


@pytest.fixture
def forget_test_modules():
    """Plugin modules imported in-process belong to one test's site folder only."""
    yield
    for name in [n for n in sys.modules if n.startswith("clearml_test_")]:
        del sys.modules[name]


def test_discovery_sees_a_plugin_installed_after_the_first_registry(
    tmp_path, monkeypatch, forget_test_modules
):
    site = tmp_path / "site"
    plugin_dists.install(site, plugin_dists.working())
    monkeypatch.syspath_prepend(str(site))
    first = {info.name: info.status for info in PluginRegistry().plugins()}
    assert first["memo"] == "loaded"

    plugin_dists.broken().install(site)
    second = {info.name: info.status for info in PluginRegistry().plugins()}
    assert second["memo"] == "loaded"
    assert second["broken"] == "failed"


def test_discovery_forgets_a_plugin_removed_after_the_first_registry(
    tmp_path, monkeypatch, forget_test_modules
):
    site = tmp_path / "site"
    plugin_dists.install(site, plugin_dists.working(), plugin_dists.broken())
    monkeypatch.syspath_prepend(str(site))
    assert {info.name for info in PluginRegistry().plugins()} >= {"memo", "broken"}

    plugin_dists.working().uninstall(site)
    second = {info.name: info.status for info in PluginRegistry().plugins()}
    assert "memo" not in second
    assert second["broken"] == "failed"


def _renamed_in_place(site: Path) -> None:
    """Reinstall the memo plugin at the same version under another entry point name (``memo2``):
    the same ``*.dist-info`` folder, another ``entry_points.txt``."""
    plugin_dists.working().uninstall(site)
    replace(plugin_dists.working(), entry_point="memo2").install(site)


def test_discovery_sees_an_entry_point_rewritten_in_place(tmp_path, monkeypatch, forget_test_modules):
    site = tmp_path / "site"
    plugin_dists.install(site, plugin_dists.working())
    monkeypatch.syspath_prepend(str(site))
    assert "memo" in {info.name for info in PluginRegistry().plugins()}

    _renamed_in_place(site)
    names = {info.name: info.distribution for info in PluginRegistry().plugins()}
    assert names.get("memo2") == "clearml-test-memo"
    assert "memo" not in names


def test_a_new_process_sees_an_entry_point_rewritten_in_place(tmp_path):
    """Each ``plugins list`` reads the installed entry points afresh, whatever an earlier process
    cached under the same HOME (stevedore keeps a cache in ``~/.cache/python-entrypoints``)."""
    site = tmp_path / "site"
    before = _cli(site, plugin_dists.working(), args=("plugins", "list", "--json"))
    assert before.code == 0, before.text
    assert _listing(before)["clearml-test-memo"]["name"] == "memo"

    _renamed_in_place(site)
    after = run_cli("plugins", "list", "--json", env={"PYTHONPATH": str(site)})
    assert after.code == 0, after.text
    assert _listing(after)["clearml-test-memo"]["name"] == "memo2"


def test_discovery_honours_the_environ_argument(tmp_path, monkeypatch, forget_test_modules):
    site = tmp_path / "site"
    plugin_dists.install(site, plugin_dists.working())
    monkeypatch.syspath_prepend(str(site))
    registry = PluginRegistry(environ={"CLEARML_CORE_DISABLE_PLUGINS": "*"})

    assert {info.name: info.status for info in registry.plugins()}["memo"] == "disabled"
    assert registry.storage_backend_for("memo") is None
    assert "clearml_test_memo" not in sys.modules


def test_a_plugin_spec_names_its_implementation_lazily(tmp_path, monkeypatch, forget_test_modules):
    site = tmp_path / "site"
    plugin_dists.install(site, plugin_dists.working())
    monkeypatch.syspath_prepend(str(site))
    spec = PluginRegistry().storage_backend_for("memo")

    assert spec is not None
    assert "clearml_test_memo.driver" not in sys.modules
    assert spec.load().__name__ == "MemoDriver"
    assert "clearml_test_memo.driver" in sys.modules


# -- the facade, on hand-made registries --------------------------------------------------------------


class _Plugin:
    """A plugin object whose hooks return what it was given."""

    def __init__(self, **answers: list) -> None:
        self.answers = answers

    @hookimpl
    def clearml_storage_backends(self):
        return self.answers.get("backends", [])

    @hookimpl
    def clearml_credential_resolvers(self):
        return self.answers.get("resolvers", [])

    @hookimpl
    def clearml_package_managers(self):
        return self.answers.get("managers", [])

    @hookimpl
    def clearml_execution_environments(self):
        return self.answers.get("environments", [])

    @hookimpl
    def clearml_control_planes(self):
        return self.answers.get("planes", [])

    @hookimpl
    def clearml_config_defaults(self):
        return self.answers.get("defaults", [])


def _registry(*plugins: tuple[str, object]) -> PluginRegistry:
    registry = PluginRegistry(discover=False)
    for name, plugin in plugins:
        registry.register(plugin, name, f"dist-{name}", "9.9")
    return registry


def _backend(name: str, *schemes: str) -> StorageBackendSpec:
    return StorageBackendSpec(name=name, schemes=schemes, factory=f"pkg_{name}.driver:Driver")


def test_storage_backend_for_finds_the_backend_of_a_scheme():
    memo = _backend("memo", "memo", "memos")
    registry = _registry(
        ("memo", _Plugin(backends=[memo])), ("other", _Plugin(backends=[_backend("o", "o")]))
    )

    assert registry.storage_backend_for("memos") is memo
    assert registry.storage_backend_for("MEMO") is memo
    assert registry.storage_backend_for("nothing") is None
    assert memo in registry.storage_backends()


def test_credential_resolvers_come_in_chain_order_for_their_scheme():
    def resolver(name: str, order: int, *schemes: str) -> CredentialResolverSpec:
        return CredentialResolverSpec(name=name, schemes=schemes, order=order, factory=f"r_{name}:R")

    registry = _registry(
        ("one", _Plugin(resolvers=[resolver("sdk", 300, "memo"), resolver("file", 100, "memo", "memo2")])),
        ("two", _Plugin(resolvers=[resolver("vault", 150, "memo"), resolver("anything", 250)])),
        ("three", _Plugin(resolvers=[resolver("env", 200, "memo2")])),
    )
    ours = {"sdk", "file", "vault", "anything", "env"}

    assert [r.name for r in registry.credential_resolvers("memo")] == ["file", "vault", "anything", "sdk"]
    assert [r.name for r in registry.credential_resolvers("MEMO2")] == ["file", "env", "anything"]
    everything = [r.name for r in registry.credential_resolvers() if r.name in ours]
    assert everything == ["file", "vault", "env", "anything", "sdk"]
    # A resolver with no schemes joins every chain, the core's own schemes' too.
    assert "anything" in [r.name for r in registry.credential_resolvers("file")]


def test_named_lookups_say_what_is_installed_when_a_name_is_unknown():
    registry = _registry(
        (
            "p",
            _Plugin(
                managers=[
                    PackageManagerSpec(name="pip", factory="m:Pip"),
                    PackageManagerSpec(name="uv", factory="m:Uv"),
                ],
                environments=[ExecutionEnvSpec(name="podman", factory="m:Podman")],
            ),
        )
    )

    assert registry.package_manager("uv").factory == "m:Uv"
    with pytest.raises(NotFoundError) as missing:
        registry.package_manager("pixi")
    assert isinstance(missing.value, UserError)
    assert str(missing.value) == (
        "no package manager named 'pixi' is installed (installed: pip, uv); check agent.package_manager.type"
    )
    assert registry.execution_environment("podman").name == "podman"
    with pytest.raises(NotFoundError, match="no execution environment named 'lxc'"):
        registry.execution_environment("lxc")


def test_control_plane_for_matches_the_url_scheme():
    plane = ControlPlaneSpec(name="pg", schemes=("postgresql", "Postgres"), factory="pg.store:Store")
    registry = _registry(("pg", _Plugin(planes=[plane])))

    assert registry.control_plane_for("postgres") is plane
    assert registry.control_plane_for("redis") is None


def test_config_default_files_come_after_the_cores(tmp_path):
    defaults = tmp_path / "defaults.conf"
    defaults.write_text("memo.setting: 1\n")
    registry = _registry(("p", _Plugin(defaults=[defaults])))

    files = registry.config_default_files()
    assert files[-1] == defaults
    assert all("clearml_core" in str(path) for path in files[:-1])
    assert len(files) > 1


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: _backend("Memo", "memo"), "storage backend name 'Memo' must be lower-case"),
        (
            lambda: StorageBackendSpec(name="memo", schemes=("memo",), factory="memo.driver.Driver"),
            "storage backend 'memo': factory must look like 'package.module:attr'",
        ),
        (
            lambda: PackageManagerSpec(name="pip", factory="pip:"),
            "package manager 'pip': factory must look like",
        ),
        (lambda: _backend("memo", "me mo"), "URL scheme 'me mo' must be lower-case"),
        (lambda: ExecutionEnvSpec(name="", factory="a:b"), "execution environment name '' must be"),
    ],
)
def test_specs_reject_bad_names_and_factory_references(build, message):
    with pytest.raises(ValueError, match=message):
        build()


def test_specs_are_frozen_and_normalise_schemes():
    spec = _backend("memo", "MEMO")
    assert spec.schemes == ("memo",)
    with pytest.raises(AttributeError):
        spec.name = "other"  # type: ignore[misc]


def test_a_plugin_whose_spec_is_invalid_fails_alone():
    class Invalid:
        @hookimpl
        def clearml_storage_backends(self):
            return [StorageBackendSpec(name="bad", schemes=("bad",), factory="not a reference")]

    registry = _registry(("invalid", Invalid()), ("good", _Plugin(backends=[_backend("good", "good")])))

    infos = {info.name: info for info in registry.plugins()}
    assert infos["invalid"].status == "failed"
    assert "clearml_storage_backends: ValueError: storage backend 'bad': factory must look like" in (
        infos["invalid"].error or ""
    )
    assert registry.storage_backend_for("bad") is None
    assert registry.storage_backend_for("good") is not None


def test_a_hook_returning_the_wrong_type_fails_that_plugin():
    registry = _registry(
        ("wrong", _Plugin(managers=[{"name": "memo-pm"}])),
        ("right", _Plugin(managers=[PackageManagerSpec(name="memo-pm", factory="m:Memo")])),
    )

    infos = {info.name: info for info in registry.plugins()}
    assert infos["wrong"].status == "failed"
    assert "returned {'name': 'memo-pm'}, not a PackageManagerSpec" in (infos["wrong"].error or "")
    assert registry.package_manager("memo-pm").factory == "m:Memo"


def test_an_unknown_hook_fails_the_plugin_and_leaves_no_hooks_behind():
    class Bogus:
        @hookimpl
        def clearml_storage_backends(self):
            return [_backend("bogus", "bogus")]

        @hookimpl
        def clearml_bogus(self):
            return []

    registry = _registry(("bogus", Bogus()))

    info = {info.name: info for info in registry.plugins()}["bogus"]
    assert info.status == "failed"
    assert "unknown hook 'clearml_bogus'" in (info.error or "")
    assert registry.storage_backend_for("bogus") is None


def test_clashing_specs_break_only_the_clashing_name():
    registry = _registry(
        ("a", _Plugin(backends=[_backend("memo", "memo-a"), _backend("solo", "solo")])),
        ("b", _Plugin(backends=[_backend("memo", "memo-b")])),
    )

    with pytest.raises(PluginError) as clash:
        registry.storage_backend_for("memo-a")
    message = str(clash.value)
    assert "two plugins claim the storage backend 'memo'" in message
    assert "dist-a 9.9" in message
    assert "dist-b 9.9" in message
    assert "CLEARML_CORE_DISABLE_PLUGINS=b" in message
    assert isinstance(clash.value, UserError)
    assert registry.storage_backend_for("solo") is not None
    assert registry.storage_backend_for("file") is not None
    assert registry.clashes() == [message]
    assert {info.name: info.status for info in registry.plugins()} == {
        "builtin": "loaded",
        "a": "conflict",
        "b": "conflict",
    }


def test_a_plugin_cannot_take_a_builtin_name():
    registry = _registry(("greedy", _Plugin(backends=[_backend("mine", "file", "mine")])))

    backend = registry.storage_backend_for("file")
    assert backend is not None and backend.name == "file"
    assert registry.storage_backend_for("mine") is None
    info = {info.name: info for info in registry.plugins()}["greedy"]
    assert info.status == "conflict"
    assert "claims the URL scheme 'file', which is clearml-core's own" in (info.error or "")
    assert registry.clashes() == []


def test_registering_one_name_twice_is_a_clash_of_that_name_only():
    registry = _registry(("memo", _Plugin(backends=[_backend("memo", "memo")])))
    registry.register(_Plugin(backends=[_backend("other", "other")]), "memo", "dist-other", "1.0")

    infos = registry.plugins()
    assert [(info.name, info.status) for info in infos if info.name == "memo"] == [
        ("memo", "conflict"),
        ("memo", "conflict"),
    ]
    message = next(info.error for info in infos if info.distribution == "dist-other") or ""
    assert "two distributions install the plugin entry point 'memo'" in message
    assert "dist-memo 9.9" in message and "dist-other 1.0" in message
    assert registry.storage_backend_for("memo") is not None
    assert registry.storage_backend_for("other") is not None


def test_provides_does_not_grow_when_hooks_are_collected_again():
    registry = _registry(("memo", _Plugin(backends=[_backend("memo", "memo")])))
    registry.plugins()
    registry.register(_Plugin(), "late", "dist-late", "1.0")

    memo = {info.name: info for info in registry.plugins()}["memo"]
    assert memo.provides == ["storage backend memo (memo://)"]


@pytest.mark.parametrize("defaults", ["missing.conf", 42])
def test_a_plugin_whose_defaults_file_is_missing_fails_alone(tmp_path, defaults):
    item = tmp_path / defaults if isinstance(defaults, str) else defaults
    registry = _registry(
        ("shipless", _Plugin(defaults=[item], backends=[_backend("shipless", "shipless")])),
        ("good", _Plugin(backends=[_backend("good", "good")])),
    )

    info = {info.name: info for info in registry.plugins()}["shipless"]
    assert info.status == "failed"
    expected = (
        "does not exist; reinstall the plugin" if isinstance(defaults, str) else "not the path of a .conf"
    )
    assert expected in (info.error or "")
    assert item not in registry.config_default_files()
    assert registry.storage_backend_for("shipless") is None
    assert registry.storage_backend_for("good") is not None
