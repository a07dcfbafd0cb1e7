"""Which driver serves a URL: the plugin registry first, then install hints, then fsspec.

:func:`driver_for` is the one place that turns a URL into a :class:`StorageDriver`:

1. a backend registered for the scheme (built in or a plugin) — its driver class is imported now;
   an ImportError becomes a :class:`BackendNotInstalledError` carrying the spec's install hint;
2. an official backend that is not installed — the hint of :mod:`clearml_core.storage.hints`
   (``s3:// needs the S3 backend: pip install 'clearml-core[s3]'``);
3. a scheme fsspec knows (``ftp``, ``hdfs``, ``memory``, …) — the generic fsspec driver, or the
   hint of a package its client needs (``hdfs:// needs pyarrow …: pip install pyarrow``);
4. anything else — a :class:`BackendNotInstalledError` naming the scheme.

Drivers are cached per (backend, :meth:`StorageDriver.connection_key`) and per configuration
object, so a reloaded clearml.conf gets fresh drivers.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from clearml_core.errors import PluginError
from clearml_core.storage.errors import BackendNotInstalledError
from clearml_core.storage.hints import fsspec_install_hint, install_hint
from clearml_core.storage.url import StorageURL, parse_url

if TYPE_CHECKING:
    from clearml_core.config.tree import Config
    from clearml_core.storage.driver import StorageDriver

__all__ = ["Backend", "backend_for", "driver_for", "reset_drivers"]

FSSPEC_BACKEND = "fsspec"
FSSPEC_FACTORY = "clearml_core.storage.drivers.fsspec:FsspecDriver"


@dataclass(frozen=True)
class Backend:
    """The backend chosen for a scheme: its name and its driver class."""

    name: str
    driver_class: type[StorageDriver]


def backend_for(scheme: str) -> Backend:
    """The backend serving ``scheme``; :class:`BackendNotInstalledError` says what to install."""
    from clearml_core.plugins import get_registry
    from clearml_core.specs import load_reference
    from clearml_core.storage.driver import StorageDriver

    scheme = scheme.lower()
    registry = get_registry()
    spec = registry.storage_backend_for(scheme)
    if spec is not None:
        try:
            driver_class = spec.load()
        except ImportError as error:
            hint = spec.install_hint or install_hint(scheme) or "reinstall the plugin that provides it"
            raise BackendNotInstalledError(
                f"{scheme}:// is served by the storage backend {spec.name!r}, but its driver "
                f"{spec.factory} cannot be imported ({error}); {hint}"
            ) from error
        except AttributeError as error:
            raise PluginError(
                f"storage backend {spec.name!r} names the driver {spec.factory}, which does not exist: {error}"
            ) from error
        if not (isinstance(driver_class, type) and issubclass(driver_class, StorageDriver)):
            raise PluginError(
                f"storage backend {spec.name!r}: {spec.factory} is not a StorageDriver subclass"
            )
        return Backend(spec.name, driver_class)
    official_hint = install_hint(scheme)
    if official_hint is not None:
        raise BackendNotInstalledError(official_hint)
    fsspec_problem = _fsspec_problem(scheme)
    if fsspec_problem is None:
        missing = fsspec_install_hint(scheme)
        if missing is not None:
            raise BackendNotInstalledError(missing)
        return Backend(FSSPEC_BACKEND, load_reference(FSSPEC_FACTORY))
    if fsspec_problem:
        raise BackendNotInstalledError(f"{scheme}:// is served through fsspec, which says: {fsspec_problem}")
    known = sorted({s for spec in registry.storage_backends() for s in spec.schemes})
    raise BackendNotInstalledError(
        f"unknown URL scheme '{scheme}://': no installed storage backend or fsspec implementation "
        f"serves it (installed backends serve: {', '.join(s + '://' for s in known) or 'none'}); "
        "install a plugin that provides it, or check the URL for a typo"
    )


def _fsspec_problem(scheme: str) -> str | None:
    """None when fsspec can serve ``scheme``, "" when it does not know it, else why it cannot."""
    try:
        import fsspec
    except ImportError:  # pragma: no cover - fsspec is a dependency of clearml-core
        return ""
    try:
        fsspec.get_filesystem_class(scheme)
    except ValueError:
        return ""
    except ImportError as error:
        return str(error) or f"its {scheme} implementation is not installed"
    return None


_lock = threading.Lock()
_drivers: dict[tuple[str, Hashable], tuple[Config, StorageDriver]] = {}


def driver_for(url: StorageURL | str, config: Config | None = None) -> StorageDriver:
    """The (shared) driver for ``url``, built on first use with ``config`` (default: clearml.conf)."""
    if config is None:
        from clearml_core.settings import get_config

        config = get_config()
    url = parse_url(url)
    backend = backend_for(url.scheme)
    key = (backend.name, backend.driver_class.connection_key(url))
    with _lock:
        cached = _drivers.get(key)
        if cached is not None and cached[0] is config:
            return cached[1]
    # built outside the lock: a driver may open connections; a racing twin is simply dropped
    driver = backend.driver_class(config, url)
    with _lock:
        cached = _drivers.get(key)
        if cached is not None and cached[0] is config:
            driver.close()
            return cached[1]
        _drivers[key] = (config, driver)
    if cached is not None:
        cached[1].close()
    return driver


def reset_drivers() -> None:
    """Close and forget every cached driver (tests; after credentials or plugins change)."""
    with _lock:
        drivers = [driver for _config, driver in _drivers.values()]
        _drivers.clear()
    for driver in drivers:
        driver.close()
