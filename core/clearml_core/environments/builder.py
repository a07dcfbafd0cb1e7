"""From a task to a ready interpreter: manager → fingerprint → cache hit or build.

:class:`EnvironmentBuilder` is what the agent's ``environment`` stage and ``agent build`` call.
It picks the package manager (``agent.package_manager.type``, through the plugin registry), asks
it for the task's requirements and settings, derives the cache key, and either leases a cached
environment or builds one: in the cache when it is on, else (or when the requirements point into
the task's own checkout, or the disk is too full) in a private folder deleted after the task.

A task that needs no packages runs with the agent's interpreter (``agent.python_binary`` or the
one running the agent), without any environment, as before package managers existed.
"""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from clearml_core.environments.cache import EnvironmentCache, Lease, NoRoom, environment_key, is_disk_full
from clearml_core.environments.cuda import cuda_version_for
from clearml_core.environments.process import BuildFailed, BuildLog
from clearml_core.environments.protocol import BuildContext, PackageManager, PythonEnv, fingerprint_of
from clearml_core.environments.python import PythonInfo, find_python
from clearml_core.errors import NotFoundError, UserError

if TYPE_CHECKING:
    from clearml_core.config import Config
    from clearml_core.controlplane import Task
    from clearml_core.plugins import PluginRegistry

T = TypeVar("T")

DEFAULT_MANAGER = "pip"
HINTS = {
    "conda": "pip install 'clearml-core[conda]' (the conda package manager, clearml-core-pkgmgr-conda)",
    "poetry": "pip install 'clearml-core[poetry]' (the poetry package manager, clearml-core-pkgmgr-poetry)",
    "pip": "reinstall clearml-core: its dependency clearml-core-pkgmgr-pip provides pip and uv",
    "uv": "reinstall clearml-core: its dependency clearml-core-pkgmgr-pip provides pip and uv",
}
"""What to do about a package manager no installed plugin provides, by its name."""


@dataclass
class Plan:
    """What the builder decided before building anything."""

    manager: PackageManager
    python: PythonInfo
    context: BuildContext
    requirements: Any
    settings: Any
    fingerprint: str
    key: str

    @property
    def empty(self) -> bool:
        return not self.requirements

    @property
    def uncacheable_reason(self) -> str:
        return str(getattr(self.requirements, "uncacheable_reason", "") or "")


@dataclass
class PreparedEnvironment:
    """The interpreter a task runs with, and what holds it (release it when the task ends)."""

    python: str
    environ: dict[str, str] = field(default_factory=dict)
    env: PythonEnv | None = None
    manager: str = ""
    key: str = ""
    source: str = "none"
    """``none`` (the agent's interpreter), ``cache-hit``, ``cache-build``, ``private``, ``target``
    (``agent build``) or ``standalone`` (``--standalone-mode``: the interpreter as it is)."""
    frozen: list[str] = field(default_factory=list)
    requirements_update: dict[str, Any] = field(default_factory=dict)
    """More fields of the task's requirements to rewrite (the manager's ``requirements_update``)."""
    seconds: float = 0.0
    summary: dict[str, Any] = field(default_factory=dict)
    lease: Lease | None = None
    private_path: Path | None = None

    def release(self) -> None:
        """Give the cache entry back, or delete a private environment."""
        if self.lease is not None:
            self.lease.release(trim_in_background=True)
            self.lease = None
        if self.private_path is not None:
            shutil.rmtree(self.private_path, ignore_errors=True)
            self.private_path = None

    def record(self) -> dict[str, Any]:
        """What goes into the task's ``runtime["environment"]``."""
        data: dict[str, Any] = {
            "source": self.source,
            "python": self.python,
            "seconds": round(self.seconds, 3),
        }
        if self.env is not None:
            data.update(
                manager=self.manager, key=self.key, path=str(self.env.path), packages=len(self.frozen)
            )
        if self.summary:
            data["summary"] = self.summary
        return data


class EnvironmentBuilder:
    """Builds (or finds) task environments according to ``config``."""

    def __init__(
        self,
        config: Config,
        *,
        registry: PluginRegistry | None = None,
        cache: EnvironmentCache | str | None = "config",
    ) -> None:
        self.config = config
        self._registry = registry
        self.cache: EnvironmentCache | None = (
            EnvironmentCache.from_config(config) if isinstance(cache, str) else cache
        )

    @property
    def registry(self) -> PluginRegistry:
        if self._registry is None:
            from clearml_core.plugins import get_registry

            self._registry = get_registry()
        return self._registry

    # -- deciding ----------------------------------------------------------------------------
    def load_manager(self, name: str) -> PackageManager:
        try:
            spec = self.registry.package_manager(name)
        except NotFoundError as error:
            hint = HINTS.get(name)
            raise UserError(f"{error}" + (f"; {hint}" if hint else "")) from None
        try:
            factory = spec.load()
        except Exception as error:
            raise UserError(
                f"the package manager {name!r} ({spec.factory}) cannot be loaded: {type(error).__name__}: {error}"
            ) from None
        manager = factory(self.config)
        if not isinstance(manager, PackageManager):
            raise UserError(f"the package manager {name!r} ({spec.factory}) is not a PackageManager")
        return manager

    def select_manager(
        self, task: Task, code_dir: Path | None, log: BuildLog | None = None
    ) -> PackageManager:
        """The manager ``agent.package_manager.type`` names, or pip when that one does not apply."""
        wanted = (
            self.config.get_str("agent.package_manager.type", DEFAULT_MANAGER) or DEFAULT_MANAGER
        ).strip()
        manager = self.load_manager(wanted.lower())
        if manager.detect(task, code_dir) or wanted.lower() == DEFAULT_MANAGER:
            return manager
        if log is not None:
            log.info(f"package manager {wanted!r} does not apply to this task; using {DEFAULT_MANAGER}")
        return self.load_manager(DEFAULT_MANAGER)

    def context(
        self,
        *,
        code_dir: Path | None = None,
        working_dir: Path | None = None,
        gpus: list[str] | None = None,
        image: str = "",
        scratch_dir: Path | None = None,
        python: PythonInfo | None = None,
    ) -> BuildContext:
        """What the manager may look at; ``python`` replaces ``agent.python_binary``."""
        python = python or find_python(
            self.config.get_str("agent.python_binary", "") or "",
            cache_dir=self.cache.root if self.cache is not None else None,
        )
        return BuildContext(
            config=self.config,
            python=python,
            code_dir=code_dir,
            working_dir=working_dir,
            cuda_version=cuda_version_for(self.config, gpus),
            image=image,
            scratch_dir=scratch_dir,
        )

    def plan(self, task: Task, context: BuildContext, log: BuildLog | None = None) -> Plan:
        """Manager, requirements (resolved), settings and the cache key, without building anything."""
        manager = self.select_manager(task, context.code_dir, log)
        settings = manager.settings(context)
        requirements = manager.resolve(manager.requirements(task, context), settings, context, log)
        fingerprint = fingerprint_of(requirements, settings)
        key = environment_key(manager.name, fingerprint, context.python, context.image)
        return Plan(manager, context.python, context, requirements, settings, fingerprint, key)

    # -- building ----------------------------------------------------------------------------
    def prepare(
        self, task: Task, context: BuildContext, log: BuildLog, private_dir: Path
    ) -> PreparedEnvironment:
        """The environment ``task`` runs in: cached, built into the cache, or private at ``private_dir``."""
        started = time.monotonic()
        plan = self.plan(task, context, log)
        if plan.empty:
            python = self.config.get_str("agent.python_binary", "") or sys.executable
            return PreparedEnvironment(python=python, source="none", seconds=time.monotonic() - started)
        if self.config.get_bool("agent.venv_update.enabled", False):
            log.info(
                "agent.venv_update is superseded by the environment cache (agent.venvs_cache) and ignored"
            )
        summary = plan.manager.describe(plan.requirements, plan.settings)
        cache = self.cache
        reason = plan.uncacheable_reason
        if cache is not None and not reason:
            lease = cache.lookup(plan.key)
            built_here = False
            if lease is None:
                log.info(f"environment {plan.key[:12]} is not cached; building it with {plan.manager.name}")
                try:
                    lease = _disk_full_is_a_failure(cache.root)(cache.acquire)(
                        plan.key,
                        lambda path, fd: self._build(plan, path, log, fd)[1],
                        should_stop=log.stop_reason,
                        on_wait=lambda: log.info(
                            "another task is building the same environment; waiting for it"
                        ),
                    )
                    built_here = lease.built
                except NoRoom as error:
                    reason = f"the cache has no room ({error})"
            if lease is not None:
                metadata = lease.metadata
                if not built_here:
                    log.info(
                        f"environment cache hit {plan.key[:12]}: {len(metadata.get('frozen', []))} packages, "
                        f"{plan.manager.name}, Python {plan.python.version}"
                    )
                return _prepared(
                    plan,
                    lease.env,
                    metadata,
                    source="cache-build" if built_here else "cache-hit",
                    started=started,
                    summary=summary,
                    lease=lease,
                )
        if cache is None:
            log.info(f"building the environment with {plan.manager.name} (the environment cache is off)")
        else:
            log.info(f"building a private environment for this task: {reason}")
        shutil.rmtree(private_dir, ignore_errors=True)
        env, metadata = _disk_full_is_a_failure(private_dir)(self._build_folder)(plan, private_dir, log)
        return _prepared(
            plan, env, metadata, source="private", started=started, summary=summary, private_path=private_dir
        )

    def build_at(
        self,
        task: Task,
        context: BuildContext,
        log: BuildLog,
        target: Path,
        *,
        install_globally: bool = False,
    ) -> PreparedEnvironment:
        """Build ``task``'s environment at ``target`` (a new or empty folder), outside the cache.

        ``install_globally`` (``agent build --install-globally``, clearml-agent's meaning): the
        requirements go into the interpreter itself first, and the environment at ``target`` is
        made empty; with ``agent.package_manager.system_site_packages`` on, it sees them.
        """
        started = time.monotonic()
        target = Path(target).expanduser().absolute()
        if target.exists() and (not target.is_dir() or any(target.iterdir())):
            raise UserError(
                f"{target} exists and is not an empty folder; give a new or empty folder as --target"
            )
        plan = self.plan(task, context, log)
        if install_globally and plan.requirements:
            self._install_into_interpreter(plan, log)
        if target.exists():
            target.rmdir()
        env, metadata = self._build_folder(plan, target, log, install=not install_globally)
        summary = plan.manager.describe(plan.requirements, plan.settings)
        if install_globally:
            summary["installed_into"] = plan.python.executable
        return _prepared(plan, env, metadata, source="target", started=started, summary=summary)

    def _install_into_interpreter(self, plan: Plan, log: BuildLog) -> None:
        """Install the plan's requirements into ``plan.python`` itself (its site-packages, or the
        user's when the installer is told so: ``PIP_USER``). The manager installs into an
        environment folder; a scratch folder whose ``bin/python`` is that interpreter is one."""
        import tempfile

        log.info(f"installing the requirements into {plan.python.executable} itself (--install-globally)")
        with tempfile.TemporaryDirectory(prefix="clearml-global-") as scratch:
            interpreter = PythonEnv(Path(scratch))
            interpreter.bin_dir.mkdir()
            interpreter.python.symlink_to(plan.python.executable)
            plan.manager.install(interpreter, plan.requirements, plan.settings, log)

    def _build_folder(
        self, plan: Plan, folder: Path, log: BuildLog, *, install: bool = True
    ) -> tuple[PythonEnv, dict[str, Any]]:
        """Build the plan's environment at ``folder``, outside the cache; nothing is left there
        when the build fails. The environment is elsewhere when the manager uses an existing one."""
        folder.parent.mkdir(parents=True, exist_ok=True)
        try:
            return self._build(plan, folder, log, None, install=install)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise

    def _build(
        self, plan: Plan, path: Path, log: BuildLog, lock_fd: int | None, *, install: bool = True
    ) -> tuple[PythonEnv, dict[str, Any]]:
        started = time.monotonic()
        manager = plan.manager
        log.keep_fds = (lock_fd,) if lock_fd is not None else ()
        try:
            env = manager.create(path, plan.python, plan.settings, log)
            log.check()
            if plan.requirements and install:
                manager.install(env, plan.requirements, plan.settings, log)
            log.check()
            frozen = manager.freeze(env)
        finally:
            log.keep_fds = ()
        seconds = time.monotonic() - started
        log.info(f"environment ready in {seconds:.1f} s: {len(frozen)} packages")
        return env, {
            "manager": manager.name,
            "python": plan.python.key(),
            "image": plan.context.image,
            "frozen": frozen,
            "build_seconds": round(seconds, 3),
            "summary": manager.describe(plan.requirements, plan.settings),
        }


def _prepared(
    plan: Plan,
    env: PythonEnv,
    metadata: dict[str, Any],
    *,
    source: str,
    started: float,
    summary: dict[str, Any],
    lease: Lease | None = None,
    private_path: Path | None = None,
) -> PreparedEnvironment:
    """The task's interpreter in ``env``, built (or found) for ``plan`` since ``started``."""
    frozen = list(metadata.get("frozen", []))
    return PreparedEnvironment(
        python=str(env.python),
        environ=plan.manager.activation(env),
        env=env,
        manager=plan.manager.name,
        key=plan.key,
        source=source,
        frozen=frozen,
        requirements_update=plan.manager.requirements_update(plan.requirements, plan.settings, frozen),
        seconds=time.monotonic() - started,
        summary=summary,
        lease=lease,
        private_path=private_path,
    )


def _disk_full_is_a_failure(where: Path) -> Callable[[Callable[..., T]], Callable[..., T]]:
    """Turn ENOSPC/EDQUOT from our own writes (the marker, requirement files) into one clear reason."""

    def wrap(function: Callable[..., T]) -> Callable[..., T]:
        def call(*args: Any, **kwargs: Any) -> T:
            try:
                return function(*args, **kwargs)
            except OSError as error:
                if is_disk_full(error):
                    raise BuildFailed(
                        f"no space left on the device while building the environment in {where}"
                    ) from None
                raise

        return call

    return wrap
