"""Which driver serves a URL: registered backends, install hints, the fsspec fallback, failures."""

from __future__ import annotations

import importlib.util
import sys
import textwrap
from pathlib import Path

import pytest
from fsspec.spec import AbstractFileSystem

from clearml_core import hookimpl, plugins
from clearml_core.config import Config
from clearml_core.errors import PluginError, UserError
from clearml_core.specs import StorageBackendSpec
from clearml_core.storage.backends import backend_for, driver_for, reset_drivers
from clearml_core.storage.driver import StorageDriver
from clearml_core.storage.drivers.fsspec import FsspecDriver
from clearml_core.storage.drivers.http import HttpDriver
from clearml_core.storage.drivers.local import LocalDriver
from clearml_core.storage.errors import BackendNotInstalledError
from tests.storage.kit_support import defaults_only_config


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Config:
    return defaults_only_config(tmp_path_factory)


@pytest.fixture(autouse=True)
def _no_external_plugins(monkeypatch: pytest.MonkeyPatch):
    """Only the built-in backends: an installed S3 plugin must not answer for s3:// here."""
    monkeypatch.setenv("CLEARML_CORE_DISABLE_PLUGINS", "*")
    plugins.reset_registry()
    reset_drivers()
    yield
    reset_drivers()
    plugins.reset_registry()


class _Plugin:
    def __init__(self, *specs: StorageBackendSpec) -> None:
        self._specs = list(specs)

    @hookimpl
    def clearml_storage_backends(self):
        return self._specs


def _with_plugin(monkeypatch: pytest.MonkeyPatch, *specs: StorageBackendSpec) -> None:
    registry = plugins.PluginRegistry(discover=False)
    registry.register(_Plugin(*specs), "test-storage-plugin", "test-storage-plugin", "0.1")
    monkeypatch.setattr(plugins, "_registry", registry)


def test_builtin_backends(config: Config) -> None:
    assert backend_for("file").driver_class is LocalDriver
    assert backend_for("HTTPS").driver_class is HttpDriver
    assert isinstance(driver_for("/tmp/x", config), LocalDriver)
    assert isinstance(driver_for("http://127.0.0.1:1/x", config), HttpDriver)


def test_drivers_are_shared_per_connection(config: Config, tmp_path: Path) -> None:
    first = driver_for(tmp_path / "a", config)
    assert driver_for(f"file://{tmp_path}/b/c", config) is first
    assert driver_for("memory://one/x", config) is driver_for("memory://one/y", config)
    assert driver_for("memory://one/x", config) is not driver_for("memory://two/x", config)
    # another configuration (a reloaded clearml.conf) gets a fresh driver
    assert driver_for(tmp_path / "a", Config({}, {}, [])) is not first


def test_official_backend_not_installed_gives_the_install_hint(config: Config) -> None:
    for url, extra in [
        ("s3://bucket/key", "s3"),
        ("gs://bucket/key", "gs"),
        ("azure://a.blob.core.windows.net/c/k", "azure"),
        ("wasbs://c@a.blob.core.windows.net/k", "azure"),
        ("sftp://u@h/x", "sftp"),
    ]:
        with pytest.raises(BackendNotInstalledError) as raised:
            driver_for(url, config)
        assert f"pip install 'clearml-core[{extra}]'" in str(raised.value)
        assert isinstance(raised.value, UserError)
    with pytest.raises(
        BackendNotInstalledError, match=r"^s3:// needs the S3 backend: pip install 'clearml-core\[s3\]'$"
    ):
        driver_for("s3://bucket/key", config)


def test_unknown_scheme(config: Config) -> None:
    with pytest.raises(BackendNotInstalledError) as raised:
        driver_for("xyz://host/path", config)
    message = str(raised.value)
    assert message.startswith("unknown URL scheme 'xyz://'")
    assert "file://" in message and "http://" in message


def test_fsspec_fallback(config: Config) -> None:
    assert backend_for("ftp").name == "fsspec"
    assert backend_for("webhdfs").driver_class is FsspecDriver
    assert isinstance(driver_for("memory://bucket/x", config), FsspecDriver)


def test_hdfs_without_pyarrow_gives_the_install_hint(config: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    """fsspec knows hdfs:// without pyarrow (its client imports pyarrow only when made)."""
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # missing, even where it is installed
    for url in ("hdfs://namenode:8020/user/me/x", "hdfs:///user/me/x"):
        with pytest.raises(BackendNotInstalledError) as raised:
            driver_for(url, config)
        assert str(raised.value) == (
            "hdfs:// needs pyarrow (fsspec's HDFS client is built on it): pip install pyarrow"
        )
        assert isinstance(raised.value, UserError)


class NeedsAMissingModule(AbstractFileSystem):
    """An fsspec file system whose client imports its package only when it is made."""

    protocol = "needsmissing"

    def __init__(self, **options: object) -> None:
        import clearml_core_no_such_module  # type: ignore[import-not-found]  # noqa: F401


def test_an_fsspec_client_that_cannot_load_says_what_to_install(config: Config) -> None:
    import fsspec

    fsspec.register_implementation("needsmissing", f"{__name__}.NeedsAMissingModule", clobber=True)
    driver = driver_for("needsmissing://host/x", config)
    with pytest.raises(BackendNotInstalledError, match="provides clearml_core_no_such_module") as raised:
        list(driver.list(driver.url))
    assert "Traceback" not in str(raised.value) and isinstance(raised.value, UserError)


def test_fsspec_scheme_with_missing_dependency(config: Config) -> None:
    if importlib.util.find_spec("ocifs") is not None:
        pytest.skip("ocifs is installed here")
    with pytest.raises(
        BackendNotInstalledError, match=r"oci:// is served through fsspec, which says: .*ocifs"
    ):
        driver_for("oci://bucket@namespace/x", config)


def test_plugin_backend_wins_over_fsspec(config: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    _with_plugin(
        monkeypatch,
        StorageBackendSpec(
            name="mem", schemes=("memory",), factory="clearml_core.storage.drivers.local:LocalDriver"
        ),
    )
    assert backend_for("memory").name == "mem"


def test_plugin_whose_driver_cannot_import(config: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    _with_plugin(
        monkeypatch,
        StorageBackendSpec(
            name="broken",
            schemes=("brk",),
            factory="clearml_no_such_module_xyz.driver:Driver",
            install_hint="pip install 'broken-backend[full]'",
        ),
    )
    with pytest.raises(BackendNotInstalledError) as raised:
        driver_for("brk://x/y", config)
    message = str(raised.value)
    assert "storage backend 'broken'" in message
    assert "clearml_no_such_module_xyz" in message
    assert message.endswith("pip install 'broken-backend[full]'")


def test_plugin_driver_whose_dependency_is_missing(
    config: Config, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The driver module exists but imports an SDK that is not installed: the install hint shows."""
    package = tmp_path / "needs_sdk_backend"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "driver.py").write_text(
        textwrap.dedent(
            """
            import clearml_not_installed_cloud_sdk  # noqa: F401
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    _with_plugin(
        monkeypatch,
        StorageBackendSpec(
            name="cloudy",
            schemes=("cloudy",),
            factory="needs_sdk_backend.driver:CloudyDriver",
            install_hint="pip install 'clearml-core[cloudy]'",
        ),
    )
    try:
        with pytest.raises(BackendNotInstalledError, match=r"clearml_not_installed_cloud_sdk.*\[cloudy\]"):
            driver_for("cloudy://bucket/key", config)
    finally:
        sys.modules.pop("needs_sdk_backend", None)
        sys.modules.pop("needs_sdk_backend.driver", None)


@pytest.mark.parametrize(
    ("factory", "says"),
    [
        ("clearml_core.storage.url:parse_url", "is not a StorageDriver subclass"),
        ("clearml_core.storage.drivers.local:NoSuchDriver", "which does not exist"),
    ],
)
def test_plugin_naming_something_else(config: Config, monkeypatch: pytest.MonkeyPatch, factory, says) -> None:
    _with_plugin(monkeypatch, StorageBackendSpec(name="odd", schemes=("odd",), factory=factory))
    with pytest.raises(PluginError, match=says):
        driver_for("odd://x/y", config)


def test_a_driver_may_share_wider_connections(config: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    class PerScheme(LocalDriver):
        built = 0

        def __init__(self, config, url) -> None:
            super().__init__(config, url)
            PerScheme.built += 1

    monkeypatch.setattr(sys.modules[__name__], "PerScheme", PerScheme, raising=False)
    _with_plugin(
        monkeypatch,
        StorageBackendSpec(name="wide", schemes=("wide",), factory=f"{__name__}:PerScheme"),
    )
    first = driver_for("wide://a/x", config)
    assert driver_for("wide://b/y", config) is first
    assert PerScheme.built == 1
    assert isinstance(first, StorageDriver)
