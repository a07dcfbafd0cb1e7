"""Plugin discovery, isolation, listing and disabling, behind a typed facade.

Plugins are found through entry points of the group ``clearml_core.plugins`` (stevedore loads
them; nothing outside this module touches stevedore or pluggy). A plugin that fails to import or
whose hooks raise is reported with its distribution and version and skipped; the rest keeps
working. Two plugins claiming one name (a URL scheme, a package manager, …) break that name alone:
using it raises a :class:`~clearml_core.errors.PluginError` naming both distributions, everything
else keeps working, and both plugins are listed with the status ``conflict``. A plugin cannot take
a name of the built-in implementations: the built-in keeps it, and the plugin's claim is reported
and ignored. ``CLEARML_CORE_DISABLE_PLUGINS=name,…`` (entry point or distribution names) or ``*``
turns external plugins off; the built-in implementations always stay.
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pluggy

from clearml_core import hookspecs
from clearml_core.errors import NotFoundError, PluginError
from clearml_core.specs import (
    SPEC_TYPES,
    ControlPlaneSpec,
    CredentialResolverSpec,
    ExecutionEnvSpec,
    PackageManagerSpec,
    StorageBackendSpec,
    _Spec,
)

ENTRY_POINT_GROUP = "clearml_core.plugins"
DISABLE_VARIABLE = "CLEARML_CORE_DISABLE_PLUGINS"
BUILTIN_NAME = "builtin"
CORE_DISTRIBUTION = "clearml-core"
CONFIG_DEFAULTS_HOOK = "clearml_config_defaults"

log = logging.getLogger(__name__)

SpecT = TypeVar("SpecT", bound=_Spec)


@dataclass
class PluginInfo:
    """One row of ``plugins list``."""

    name: str
    distribution: str
    version: str
    status: str = "loaded"  # loaded | failed | disabled | conflict
    error: str | None = None
    provides: list[str] = field(default_factory=list)
    key: str = ""
    """What the plugin is registered under: ``name``, or ``name@distribution`` for the second of
    two distributions installing one entry point name."""

    def __post_init__(self) -> None:
        self.key = self.key or self.name

    @property
    def label(self) -> str:
        return f"{self.distribution} {self.version} (plugin {self.name!r})"

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "distribution": self.distribution,
            "version": self.version,
            "status": self.status,
            "error": self.error,
            "provides": list(self.provides),
        }


def disabled_plugin_names(environ: Mapping[str, str] | None = None) -> set[str]:
    """Names listed in ``CLEARML_CORE_DISABLE_PLUGINS`` (``{"*"}`` disables every external plugin)."""
    raw = (os.environ if environ is None else environ).get(DISABLE_VARIABLE, "")
    return {part.strip() for part in raw.split(",") if part.strip()}


class PluginRegistry:
    """The installed plugins and what they provide.

    Build one with :func:`get_registry`; tests make their own with ``discover=False`` and
    :meth:`register`.
    """

    def __init__(self, *, discover: bool = True, environ: Mapping[str, str] | None = None) -> None:
        self._pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        self._pm.add_hookspecs(hookspecs)
        self._infos: dict[str, PluginInfo] = {}
        self._collected: dict[str, list[tuple[str, Any]]] | None = None
        self._entry_point_clashes: dict[str, list[str]] = {}
        """entry point name -> keys of the plugins installing it, when more than one does."""
        self._clashes: dict[tuple[str, str], str] = {}
        """(kind, name) claimed by more than one plugin -> the message naming them."""
        self._ignored: set[tuple[str, int]] = set()
        """(plugin key, id of the spec) of specs that claim a name of the built-in implementations."""
        self._warned: set[str] = set()
        from clearml_core import builtin

        self.register(builtin, BUILTIN_NAME, CORE_DISTRIBUTION, _core_version())
        if discover:
            self._discover(disabled_plugin_names(environ))

    # -- discovery ---------------------------------------------------------------------------
    def _discover(self, disabled: set[str]) -> None:
        # One snapshot of the entry points, read afresh through importlib.metadata, decides both
        # what is loaded and which distribution each plugin comes from; stevedore loads exactly
        # these (why not its own list: _load_entry_points).
        enabled = []
        for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            dist_name, version = _distribution_of(ep)
            if "*" in disabled or ep.name in disabled or dist_name in disabled:
                self._infos.setdefault(ep.name, PluginInfo(ep.name, dist_name, version, status="disabled"))
            else:
                enabled.append(ep)
        if not enabled:
            return

        def on_failure(_manager: Any, ep: Any, error: BaseException) -> None:
            dist_name, version = _distribution_of(ep)
            info = PluginInfo(ep.name, dist_name, version, key=self._key_for(ep.name, dist_name))
            self._fail(info, f"{type(error).__name__}: {error}")

        for extension in _load_entry_points(enabled, on_failure):
            dist_name, version = _distribution_of(extension.entry_point)
            self.register(extension.plugin, extension.name, dist_name, version)

    def _key_for(self, name: str, distribution: str) -> str:
        """``name``, or ``name@distribution`` when another distribution already installs ``name``."""
        existing = self._infos.get(name)
        if existing is None or existing.status == "disabled":
            return name
        key = f"{name}@{distribution}"
        self._entry_point_clashes.setdefault(name, [name])
        if key not in self._entry_point_clashes[name]:
            self._entry_point_clashes[name].append(key)
        return key

    def register(self, plugin: object, name: str, distribution: str = "", version: str = "") -> None:
        """Register a plugin object (a module with hook implementations) under ``name``.

        A second distribution installing the same entry point name is registered as well (as
        ``name@distribution``): both are listed as clashing, and what they provide stays usable
        unless they claim the same names.
        """
        distribution = distribution or name
        info = PluginInfo(name, distribution, version or "?", key=self._key_for(name, distribution))
        try:
            self._pm.register(plugin, name=info.key)
            self._check_hooks_known(plugin)
        except Exception as error:  # a plugin's own mistake must not stop the others
            self._fail(info, f"{type(error).__name__}: {error}")
            return
        self._infos[info.key] = info
        self._collected = None

    def _check_hooks_known(self, plugin: object) -> None:
        for caller in self._pm.get_hookcallers(plugin) or []:
            if caller.spec is None:
                self._pm.unregister(plugin)
                raise pluggy.PluginValidationError(
                    plugin, f"unknown hook {caller.name!r}; the known hooks are in clearml_core.hookspecs"
                )

    def _fail(self, info: PluginInfo, error: str) -> None:
        info.status = "failed"
        info.error = error
        self._infos[info.key] = info
        plugin = self._pm.get_plugin(info.key)
        if plugin is not None:
            self._pm.unregister(plugin)
        log.warning("plugin %s failed to load and was skipped: %s", info.label, error)

    # -- collection --------------------------------------------------------------------------
    def _collect(self) -> dict[str, list[tuple[str, Any]]]:
        """Call every registration hook once, per plugin, so each answer is attributed."""
        if self._collected is not None:
            return self._collected
        answers: dict[str, dict[str, list[Any]]] = {}
        for hook_name in [*SPEC_TYPES, CONFIG_DEFAULTS_HOOK]:
            for impl in getattr(self._pm.hook, hook_name).get_hookimpls():
                try:
                    items = list(impl.function() or ())
                    expected = SPEC_TYPES.get(hook_name)
                    for item in items:
                        if expected is not None and not isinstance(item, expected):
                            raise TypeError(f"{hook_name} returned {item!r}, not a {expected.__name__}")
                        if hook_name == CONFIG_DEFAULTS_HOOK:
                            _check_defaults_file(item)
                except Exception as error:
                    self._fail(self._infos[impl.plugin_name], f"{hook_name}: {type(error).__name__}: {error}")
                    continue
                answers.setdefault(impl.plugin_name, {})[hook_name] = items
        collected: dict[str, list[tuple[str, Any]]] = {
            name: [] for name in [*SPEC_TYPES, CONFIG_DEFAULTS_HOOK]
        }
        claims: dict[tuple[str, str], list[tuple[str, _Spec]]] = {}
        for info in self._infos.values():
            info.provides.clear()
            if info.status == "conflict":  # worked out again below, from what is registered now
                info.status, info.error = "loaded", None
        for key, info in self._infos.items():
            if info.status != "loaded" or key not in answers:
                continue
            for hook_name, items in answers[key].items():
                if hook_name == CONFIG_DEFAULTS_HOOK and items:
                    info.provides.append("config defaults " + ", ".join(Path(i).name for i in items))
                for item in items:
                    collected[hook_name].append((key, item))
                    if isinstance(item, _Spec):
                        info.provides.append(_describe(item))
                        for claim in item.claims():
                            claims.setdefault(claim, []).append((key, item))
        self._collected = collected
        self._settle_claims(claims)
        return collected

    def _settle_claims(self, claims: dict[tuple[str, str], list[tuple[str, _Spec]]]) -> None:
        """Record every name that more than one plugin claims, and mark those plugins."""
        self._clashes = {}
        self._ignored = set()
        for (kind, name), holders in claims.items():
            owners = list(dict.fromkeys(key for key, _spec in holders))
            if len(owners) < 2:
                continue
            if BUILTIN_NAME in owners:
                # the core's own names stay the core's: file:// must not break for a plugin's sake
                for key, spec in holders:
                    if key != BUILTIN_NAME:
                        self._ignored.add((key, id(spec)))
                        self._mark_conflict(
                            key,
                            f"{self._infos[key].label} claims the {kind} {name!r}, which is clearml-core's "
                            f"own; its {spec.kind} {spec.name!r} is ignored (rename it in the plugin, or "
                            f"uninstall or disable the plugin: {DISABLE_VARIABLE}={self._infos[key].name})",
                        )
                continue
            labels = " and ".join(self._infos[key].label for key in owners)
            message = (
                f"two plugins claim the {kind} {name!r}: {labels}; it cannot be used until one is "
                f"uninstalled or disabled (e.g. {DISABLE_VARIABLE}={self._infos[owners[-1]].name})"
            )
            self._clashes[(kind, name)] = message
            for key in owners:
                self._mark_conflict(key, message)
        for name, keys in self._entry_point_clashes.items():
            present = [key for key in keys if key in self._infos]
            if len(present) < 2:
                continue
            labels = " and ".join(self._infos[key].label for key in present)
            message = (
                f"two distributions install the plugin entry point {name!r}: {labels}; uninstall one, or "
                f"disable it by its distribution name ({DISABLE_VARIABLE}={self._infos[present[-1]].distribution})"
            )
            for key in present:
                self._mark_conflict(key, message)

    def _mark_conflict(self, key: str, message: str) -> None:
        info = self._infos[key]
        if info.status not in ("loaded", "conflict"):
            return
        if info.error and message in info.error:
            return
        if message not in self._warned:
            self._warned.add(message)
            log.warning("%s", message)
        info.status = "conflict"
        info.error = f"{info.error}; {message}" if info.error else message

    def _offered_pairs(self, *hook_names: str) -> Iterator[tuple[str, _Spec]]:
        """(plugin key, spec) the hooks returned, less specs that claim a built-in name."""
        for hook_name in hook_names or tuple(SPEC_TYPES):
            for key, item in self._collect()[hook_name]:
                if (key, id(item)) not in self._ignored:
                    yield key, item

    def _offered(self, hook_name: str, spec_type: type[SpecT]) -> list[SpecT]:
        """Every spec of one kind the plugins offer, less those that claim a built-in name."""
        return [item for _key, item in self._offered_pairs(hook_name) if isinstance(item, spec_type)]

    def _refuse_clashes(self, spec: _Spec | None, *claims: tuple[str, str]) -> None:
        """Raise the clash's :class:`PluginError` when ``spec``'s name or one of ``claims`` is clashing."""
        for claim in ([(spec.kind, spec.name)] if spec is not None else []) + list(claims):
            message = self._clashes.get(claim)
            if message is not None:
                raise PluginError(message)

    # -- the facade --------------------------------------------------------------------------
    def clashes(self) -> list[str]:
        """One message per name two plugins claim (each such name fails when used)."""
        self._collect()
        return list(dict.fromkeys(self._clashes.values()))

    def provider_of(self, spec: _Spec) -> PluginInfo | None:
        """The plugin that offers ``spec`` (None for a spec this registry did not collect)."""
        key = next((key for key, item in self._offered_pairs() if item is spec), None)
        return self._infos[key] if key is not None else None

    def plugins(self) -> list[PluginInfo]:
        """Every plugin seen, with its status and what it provides."""
        self._collect()
        return list(self._infos.values())

    def storage_backends(self) -> list[StorageBackendSpec]:
        """Every storage backend offered, clashing ones included (see :meth:`storage_backend_for`)."""
        return self._offered("clearml_storage_backends", StorageBackendSpec)

    def storage_backend_for(self, scheme: str) -> StorageBackendSpec | None:
        """The backend of ``scheme``; :class:`PluginError` when two plugins claim it (or its backend name)."""
        scheme = scheme.lower()
        spec = next((spec for spec in self.storage_backends() if scheme in spec.schemes), None)
        self._refuse_clashes(spec, ("URL scheme", scheme))
        return spec

    def credential_resolvers(self, scheme: str | None = None) -> list[CredentialResolverSpec]:
        """Resolvers for ``scheme`` (all when None), in chain order.

        With a scheme, a resolver of its chain whose name two plugins claim is a :class:`PluginError`.
        """
        specs = self._offered("clearml_credential_resolvers", CredentialResolverSpec)
        if scheme is not None:
            specs = [spec for spec in specs if scheme.lower() in spec.schemes or not spec.schemes]
            for spec in specs:
                self._refuse_clashes(spec)
        return sorted(specs, key=lambda spec: spec.order)

    def package_managers(self) -> list[PackageManagerSpec]:
        return self._offered("clearml_package_managers", PackageManagerSpec)

    def package_manager(self, name: str) -> PackageManagerSpec:
        spec = _named(self.package_managers(), name, "package manager", "agent.package_manager.type")
        self._refuse_clashes(spec)
        return spec

    def execution_environments(self) -> list[ExecutionEnvSpec]:
        return self._offered("clearml_execution_environments", ExecutionEnvSpec)

    def execution_environment(self, name: str) -> ExecutionEnvSpec:
        spec = _named(
            self.execution_environments(),
            name,
            "execution environment",
            "--execution-env or agent.execution_env",
        )
        self._refuse_clashes(spec)
        return spec

    def control_planes(self) -> list[ControlPlaneSpec]:
        return self._offered("clearml_control_planes", ControlPlaneSpec)

    def control_plane_for(self, scheme: str) -> ControlPlaneSpec | None:
        scheme = scheme.lower()
        spec = next((spec for spec in self.control_planes() if scheme in spec.schemes), None)
        self._refuse_clashes(spec, ("control plane URL scheme", scheme))
        return spec

    def config_default_files(self) -> list[Path]:
        """Defaults files of the core and then of each plugin, in registration order."""
        return [Path(path) for _plugin, path in self._collect()[CONFIG_DEFAULTS_HOOK]]


def _check_defaults_file(item: Any) -> None:
    """A plugin shipping without its defaults would break every command that loads the config."""
    if not isinstance(item, (str, os.PathLike)):
        raise TypeError(f"returned {item!r}, not the path of a .conf file")
    if not Path(item).is_file():
        raise FileNotFoundError(f"the defaults file {item} does not exist; reinstall the plugin")


def _core_version() -> str:
    """clearml-core's version, read as every plugin's is: from its distribution's metadata. (The
    ``clearml_core`` package re-exports names from the layers above this one, so the registry does
    not import it.)"""
    try:
        return importlib.metadata.version(CORE_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return "?"


def _distribution_of(ep: importlib.metadata.EntryPoint) -> tuple[str, str]:
    dist = getattr(ep, "dist", None)
    return (dist.name, dist.version) if dist is not None else ("?", "?")


def _load_entry_points(
    entry_points: list[importlib.metadata.EntryPoint], on_failure: Callable[[Any, Any, BaseException], None]
) -> list[Any]:
    """Import ``entry_points`` with stevedore; one that fails goes to ``on_failure`` and is skipped.

    Stevedore imports them and reports failures through its ``on_load_failure_callback``, as
    intended; only the list of entry points is ours (its public ``list_entry_points``, overridden),
    because stevedore's own list (5.x) can disagree with what is installed:

    * ``ExtensionManager.ENTRY_POINT_CACHE`` (per group) and the module cache of
      ``stevedore._cache`` (per ``sys.path``) keep the first list for the life of the process, and
      its API has no way to refresh them, so a plugin installed or removed before a later registry is built
      (:func:`reset_registry`) would not be seen;
    * its cache on disk (``~/.cache/python-entrypoints``) is keyed by the modification times of the
      ``sys.path`` folders and their ``entry_points.txt`` files, packed as 32-bit floats (a
      resolution of about two minutes today), so a plugin reinstalled in place (same version,
      other entry points) reaches new processes from the stale cache;
    * the entry points it rebuilds from that cache carry no distribution (``ep.dist`` is None), and
      it keeps one of two identical entry points of two distributions; the listing, the clash
      messages and disabling by distribution name need both.

    importlib.metadata reads a ``sys.path`` folder again whenever its modification time changes. Every entry point is loaded, also two distributions installing one name
    (the registry then reports the clash, naming both).
    """
    from stevedore import ExtensionManager

    class _Snapshot(ExtensionManager):
        def list_entry_points(self) -> list[importlib.metadata.EntryPoint]:
            return entry_points

    return list(_Snapshot(ENTRY_POINT_GROUP, on_load_failure_callback=on_failure).extensions)


def _describe(spec: _Spec) -> str:
    schemes = getattr(spec, "schemes", ())
    suffix = f" ({', '.join(s + '://' for s in schemes)})" if schemes else ""
    return f"{spec.kind} {spec.name}{suffix}"


def _named(specs: Iterable[SpecT], name: str, kind: str, setting: str) -> SpecT:
    specs = list(specs)
    for spec in specs:
        if spec.name == name:
            return spec
    known = ", ".join(sorted(spec.name for spec in specs)) or "none"
    raise NotFoundError(f"no {kind} named {name!r} is installed (installed: {known}); check {setting}")


_registry: PluginRegistry | None = None


def get_registry() -> PluginRegistry:
    """The process-wide registry, discovered on first use."""
    global _registry
    if _registry is None:
        _registry = PluginRegistry()
    return _registry


def reset_registry() -> None:
    """Forget the process-wide registry (tests, or after installing a plugin in-process)."""
    global _registry
    _registry = None
