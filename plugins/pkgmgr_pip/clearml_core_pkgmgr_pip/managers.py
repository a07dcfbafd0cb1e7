"""The ``pip`` and ``uv`` package managers.

Both build a virtual environment from the task's requirement lines, in phases: the
``priority_packages`` the task asks for, each ``priority_optional_packages`` one on its own (a
failure is logged and skipped), the rest, the ``post_packages``, each ``post_optional_packages``.

``type: pip`` means pip's semantics: pip's configuration (``pip.conf``, ``PIP_*``) decides the
indexes, the best version across all indexes wins, and pip itself is installed at
``pip_version``. The installer is uv when it is available (``agent.package_manager.installer:
auto``, the default; ``uv`` requires it, ``pip`` never uses it), told to behave that way
(``--index-strategy unsafe-best-match``, pip's indexes passed on); the build is then 5 to 20 times faster.
With ``system_site_packages`` the installer is pip: pip counts packages of the system
site-packages (a container's preinstalled torch) as installed, uv would install its own copies.
With the ``pip`` installer, pip's legacy resolver is used for the pip versions
``pip_legacy_resolver`` lists, as clearml-agent does.

``type: uv`` means uv's semantics: uv's configuration, the first index that has a package wins
(``uv_unsafe_best_match: true`` for the best across indexes), no pip in the environment, and a
repository with a ``uv.lock`` is installed with ``uv sync --locked`` (``uv_sync_locked_if_lock_file``;
false: ``--frozen``, the lock as it is; never a new lock) without installing the project itself
(it runs from the checkout); local folders the lock installs are keyed by their content (:mod:`.uvlock`).

Index URLs reach the installers through environment variables (``PIP_EXTRA_INDEX_URL``,
``UV_EXTRA_INDEX_URL``), never on their command lines, so passwords in them stay out of process
listings and logs.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from packaging.requirements import InvalidRequirement, Requirement

from clearml_core.environments import (
    BuildContext,
    BuildFailed,
    BuildLog,
    PackageManager,
    PythonEnv,
    PythonInfo,
    RequirementSet,
    canonical_name,
    task_requirements,
)
from clearml_core.environments.process import mask_urls
from clearml_core.environments.protocol import NOT_IN_FINGERPRINT
from clearml_core_pkgmgr_pip import torch
from clearml_core_pkgmgr_pip.pipconfig import IndexConfig, read_index_config
from clearml_core_pkgmgr_pip.tools import find_uv, tool_version
from clearml_core_pkgmgr_pip.uvlock import local_sources

if TYPE_CHECKING:
    from clearml_core.controlplane import Task

PM = "agent.package_manager."
PAGE_TIMEOUT_SEC = 30.0
"""How long reading one page of PyTorch's wheel index may take (``pytorch_resolve: direct``)."""
BUILD_FOLDER = "clearml-build"
"""Inside each environment: the requirement files of each phase, as they were installed."""
_INDEX_VARIABLES = (
    "UV_INDEX_URL",
    "UV_DEFAULT_INDEX",
    "UV_EXTRA_INDEX_URL",
    "UV_INDEX",
    "UV_FIND_LINKS",
    "UV_NO_INDEX",
)


@dataclass(frozen=True)
class Phase:
    """One installer run: its lines, and whether a failure may be skipped."""

    name: str
    lines: tuple[str, ...]
    optional: bool = False


@dataclass(frozen=True)
class UvLock:
    """A project installed from its ``uv.lock``."""

    digest: str
    """Of ``uv.lock`` and ``pyproject.toml``."""
    frozen: bool = False
    """``uv sync --frozen`` (the lock as it is) rather than ``--locked`` (checked against pyproject.toml)."""
    local: tuple[tuple[str, str], ...] = ()
    """Local folders the lock installs, and their content digests (:mod:`.uvlock`)."""
    uncacheable_reason: str = field(default="", metadata=NOT_IN_FINGERPRINT)
    project_dir: str = field(default="", metadata=NOT_IN_FINGERPRINT)


@dataclass(frozen=True)
class PipRequirements:
    """The task's requirement lines, split into install phases."""

    options: tuple[str, ...] = ()
    """``--extra-index-url``, ``-c``, ``--find-links`` lines of the requirements; every phase gets them."""
    priority: tuple[str, ...] = ()
    priority_optional: tuple[str, ...] = ()
    main: tuple[str, ...] = ()
    post: tuple[str, ...] = ()
    post_optional: tuple[str, ...] = ()
    names: tuple[str, ...] = ()
    digests: tuple[tuple[str, str], ...] = ()
    torch_index: str = ""
    """The PyTorch index for this machine's CUDA, when the task asks for torch."""
    torch_wheels: tuple[tuple[str, str], ...] = field(default=(), metadata=NOT_IN_FINGERPRINT)
    """``pytorch_resolve: direct``: the wheel URL each torch requirement was pinned to (the
    requirement lines carry them, so they are in the fingerprint already)."""
    lock: UvLock | None = None
    uncacheable_reason: str = ""
    source: str = field(default="", metadata=NOT_IN_FINGERPRINT)

    def __bool__(self) -> bool:
        return bool(
            self.priority
            or self.priority_optional
            or self.main
            or self.post
            or self.post_optional
            or self.lock
        )

    @property
    def count(self) -> int:
        return sum(
            len(p) for p in (self.priority, self.priority_optional, self.main, self.post, self.post_optional)
        )


@dataclass(frozen=True)
class PipSettings:
    """How the environment is installed; the fields marked out of the fingerprint do not change it."""

    semantics: str
    """``pip`` or ``uv``: whose rules decide indexes and versions."""
    installer: str
    """``uv`` or ``pip``: the program that installs."""
    index: IndexConfig = field(default_factory=IndexConfig)
    """pip's own index configuration (pip semantics only)."""
    extra_index_urls: tuple[str, ...] = ()
    """``agent.package_manager.extra_index_url``."""
    pip_version: tuple[str, ...] = ()
    """Requirement lines for pip itself (``pip<22.3 ; python_version >= '3.10'``); empty: no pip."""
    force_upgrade: bool = False
    system_site_packages: bool = False
    extra_install_flags: tuple[str, ...] = ()
    legacy_resolver: tuple[str, ...] = ()
    index_strategy: str = ""
    sync_args: tuple[str, ...] = ()
    executable: str = field(default="", metadata=NOT_IN_FINGERPRINT)
    """The uv binary (empty with the pip installer, or when uv is missing)."""
    download_cache: str = field(default="", metadata=NOT_IN_FINGERPRINT)
    """Where the installer keeps downloads (``agent.pip_download_cache``); empty: no cache."""
    uv_version: str = field(default="", metadata=NOT_IN_FINGERPRINT)
    """``agent.package_manager.uv_version`` (checked, not enforced)."""


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return [str(item) for item in value]


def pip_requirement_lines(versions: Any) -> tuple[str, ...]:
    """``pip_version`` entries → requirement lines: ``"<22.3 ; m"`` → ``"pip<22.3 ; m"``; ``""`` → ``"pip"``."""
    lines = []
    for entry in _as_list(versions):
        text = entry.strip()
        if canonical_name(text.split(";")[0].strip().split("=")[0].split("<")[0].split(">")[0]) == "pip":
            lines.append(text)
        elif not text or text.startswith(";"):
            lines.append(f"pip{text and ' ' + text}")
        else:
            lines.append(f"pip{text}")
    return tuple(lines)


def _pin_torch_wheels(
    phases: dict[str, list[str]], root: str, tags: list[str], context: BuildContext, *, nightly: bool
) -> tuple[dict[str, str], bool]:
    """``pytorch_resolve: direct``: each torch requirement line of ``phases`` rewritten in place
    to ``name @ <wheel URL>`` (see :mod:`.torch`); the URLs by name, and whether one was not found."""
    supported = torch.interpreter_tags(context.python.implementation, context.python.version)
    variants = torch.variants_to_try(context.cuda_version, tags)
    pages: dict[str, list[str]] = {}
    pinned: dict[str, str] = {}
    unresolved = False
    for lines in phases.values():
        for number, text in enumerate(lines):
            try:
                requirement = Requirement(text)
            except InvalidRequirement:
                continue
            if canonical_name(requirement.name) not in torch.TORCH_PACKAGES or requirement.url:
                continue
            url = None
            for variant in variants:
                page = (
                    f"{torch.index_url(root, variant, nightly=nightly)}/{canonical_name(requirement.name)}/"
                )
                if page not in pages:
                    pages[page] = torch.wheel_links(page, _read_page(page))
                url = torch.best_wheel(requirement, pages[page], supported, prereleases=nightly)
                if url:
                    break
            if url is None:
                unresolved = True
                continue
            lines[number] = torch.direct_line(requirement, url)
            pinned[canonical_name(requirement.name)] = url
    return pinned, unresolved


def _read_page(url: str) -> str:
    """A simple-index page, or "" when it cannot be read (that variant has no such project)."""
    import urllib.error
    import urllib.request

    if url.startswith("file:") and url.endswith("/"):
        url += "index.html"  # a folder index, as pip reads one
    try:
        with urllib.request.urlopen(url, timeout=PAGE_TIMEOUT_SEC) as response:  # noqa: S310 (http(s)/file index)
            return str(response.read().decode("utf-8", "replace"))
    except (urllib.error.URLError, OSError, ValueError):
        return ""


class _PipFamily(PackageManager):
    """What pip and uv share: requirement phases, torch indexes, the installer commands."""

    semantics = "pip"

    # -- what to install ---------------------------------------------------------------------
    def requirements(self, task: Task, context: BuildContext) -> PipRequirements:
        lock = self._lock(context)
        if lock is not None:
            return PipRequirements(lock=lock, uncacheable_reason=lock.uncacheable_reason, source="uv.lock")
        found = task_requirements(
            task, code_dir=context.code_dir, working_dir=context.working_dir, config=self.config
        )
        return self.split(found, context)

    def _lock(self, context: BuildContext) -> UvLock | None:
        return None

    def split(self, found: RequirementSet, context: BuildContext) -> PipRequirements:
        config = self.config
        groups = {
            key: {canonical_name(name) for name in _as_list(config.get(PM + key))}
            for key in (
                "priority_packages",
                "priority_optional_packages",
                "post_packages",
                "post_optional_packages",
            )
        }
        options: list[str] = []
        phases: dict[str, list[str]] = {key: [] for key in (*groups, "main")}
        for line in found.lines:
            if line.kind == "option":
                options.append(line.text)
                continue
            target = "main"
            for key in (
                "priority_optional_packages",
                "priority_packages",
                "post_optional_packages",
                "post_packages",
            ):
                if line.name and line.name in groups[key]:
                    target = key
                    break
            phases[target].append(line.text)
        names = sorted(found.names())
        torch_index = ""
        resolve = (config.get_str(PM + "pytorch_resolve", "pip") or "pip").strip().lower()
        explicit_torch = any(
            line.name in torch.TORCH_PACKAGES and line.kind in ("url", "path") for line in found.lines
        ) or any(" @ " in line.text for line in found.lines if line.name in torch.TORCH_PACKAGES)
        torch_wheels: dict[str, str] = {}
        if resolve != "none" and torch.wants_torch(names) and not explicit_torch:
            root = config.get_str(PM + "pytorch_index_url", "") or ""
            if root:
                tags = _as_list(config.get(PM + "pytorch_cuda_tags")) or list(torch.KNOWN_CUDA_TAGS)
                nightly = config.get_bool(PM + "torch_nightly", False)
                unresolved = True
                if resolve == "direct":
                    torch_wheels, unresolved = _pin_torch_wheels(phases, root, tags, context, nightly=nightly)
                if unresolved:
                    variant = torch.pick_variant(context.cuda_version, tags)
                    torch_index = torch.index_url(root, variant, nightly=nightly)
        return PipRequirements(
            options=tuple(options),
            priority=tuple(phases["priority_packages"]),
            priority_optional=tuple(phases["priority_optional_packages"]),
            main=tuple(phases["main"]),
            post=tuple(phases["post_packages"]),
            post_optional=tuple(phases["post_optional_packages"]),
            names=tuple(names),
            digests=found.digests,
            torch_index=torch_index,
            torch_wheels=tuple(sorted(torch_wheels.items())),
            uncacheable_reason=found.uncacheable_reason,
            source=found.source,
        )

    # -- how ---------------------------------------------------------------------------------
    def settings(self, context: BuildContext) -> PipSettings:
        config = self.config
        installer, executable = self._installer(context)
        download_cache = ""
        if config.get_bool("agent.pip_download_cache.enabled", True):
            root = config.path("agent.pip_download_cache.path")
            if root is not None:
                download_cache = str(root / installer)
        flags = config.get(PM + "extra_pip_install_flags")
        extra_flags = tuple(flags.split()) if isinstance(flags, str) else tuple(_as_list(flags))
        return PipSettings(
            semantics=self.semantics,
            installer=installer,
            index=read_index_config(context.environ) if self.semantics == "pip" else IndexConfig(),
            extra_index_urls=tuple(u for u in _as_list(config.get(PM + "extra_index_url")) if u.strip()),
            pip_version=self._pip_version(),
            force_upgrade=config.get_bool(PM + "force_upgrade", False),
            system_site_packages=config.get_bool(PM + "system_site_packages", False),
            extra_install_flags=extra_flags,
            legacy_resolver=tuple(_as_list(config.get(PM + "pip_legacy_resolver")))
            if installer == "pip"
            else (),
            index_strategy=self._index_strategy(),
            sync_args=tuple(_as_list(config.get(PM + "uv_sync_extra_args")))
            if self.semantics == "uv"
            else (),
            executable=executable,
            download_cache=download_cache,
            uv_version=str(config.get(PM + "uv_version") or ""),
        )

    def _installer(self, context: BuildContext) -> tuple[str, str]:
        raise NotImplementedError

    def _pip_version(self) -> tuple[str, ...]:
        return ()

    def _index_strategy(self) -> str:
        return "unsafe-best-match"

    def describe(self, requirements: Any, settings: Any) -> dict[str, Any]:
        assert isinstance(requirements, PipRequirements) and isinstance(settings, PipSettings)
        summary: dict[str, Any] = {
            "manager": self.name,
            "installer": settings.installer,
            "source": requirements.source,
            "requirements": requirements.count,
        }
        if requirements.lock is not None:
            summary["lock"] = "uv.lock"
        if requirements.torch_index:
            summary["torch_index"] = mask_urls(requirements.torch_index)
        if requirements.torch_wheels:
            summary["torch_wheels"] = {name: mask_urls(url) for name, url in requirements.torch_wheels}
        return summary

    # -- building ----------------------------------------------------------------------------
    def create(self, target: Path, python: PythonInfo, settings: Any, log: BuildLog) -> PythonEnv:
        assert isinstance(settings, PipSettings)
        env = PythonEnv(target)
        if settings.installer == "uv":
            uv = self._uv(settings)
            self._check_uv_version(uv, settings, log)
            # the same cache as the installs: uv keeps what it learnt about the interpreter there
            argv = [uv, "venv", "--python", python.executable, "--no-project", *self._cache_args_uv(settings)]
            if settings.system_site_packages:
                argv.append("--system-site-packages")
            result = log.run(
                [*argv, str(target)], env=self._uv_environ(settings), cwd=target.parent, what="uv venv"
            )
        else:
            argv = [python.executable, "-m", "venv"]
            if settings.system_site_packages:
                argv.append("--system-site-packages")
            result = log.run([*argv, str(target)], cwd=target.parent, what="python -m venv")
        if not result.ok or not env.python.exists():
            raise BuildFailed(
                f"creating the virtual environment with Python {python.version} failed: {result.error_summary()}"
            )
        return env

    def install(self, env: PythonEnv, requirements: Any, settings: Any, log: BuildLog) -> None:
        assert isinstance(requirements, PipRequirements) and isinstance(settings, PipSettings)
        folder = env.path / BUILD_FOLDER
        folder.mkdir(parents=True, exist_ok=True)
        if requirements.lock is not None:
            self._sync(env, requirements.lock, settings, log)
            return
        seed_pip = bool(settings.pip_version) and "pip" not in requirements.names
        legacy = False
        if settings.installer == "pip" and seed_pip:
            self._run_phase(
                env,
                Phase("pip", settings.pip_version),
                requirements,
                settings,
                log,
                folder,
                False,
                upgrade=True,
            )
        if settings.installer == "pip":
            legacy = self._legacy_resolver(env, settings)
            if legacy:
                log.info("pip's legacy resolver is used (agent.package_manager.pip_legacy_resolver)")
        main = requirements.main
        if settings.installer == "uv" and seed_pip:
            main = (*main, *settings.pip_version)
        phases = [Phase("priority", requirements.priority)]
        phases += [
            Phase("priority-optional", (line,), optional=True) for line in requirements.priority_optional
        ]
        phases.append(Phase("requirements", main))
        phases.append(Phase("post", requirements.post))
        phases += [Phase("post-optional", (line,), optional=True) for line in requirements.post_optional]
        for phase in phases:
            if phase.lines:
                self._run_phase(env, phase, requirements, settings, log, folder, legacy)

    def _run_phase(
        self,
        env: PythonEnv,
        phase: Phase,
        requirements: PipRequirements,
        settings: PipSettings,
        log: BuildLog,
        folder: Path,
        legacy: bool,
        *,
        upgrade: bool = False,
    ) -> None:
        index = len(list(folder.glob("*.txt"))) + 1
        file = folder / f"{index:02d}-{phase.name}.txt"
        file.write_text("\n".join([*requirements.options, *phase.lines]) + "\n", encoding="utf-8")
        label = {
            "pip": f"pip itself ({', '.join(phase.lines)})",
            "priority": "the priority packages",
            "requirements": "the task's requirements",
            "post": "the post packages",
        }.get(phase.name, ", ".join(phase.lines))
        log.info(f"installing {label} with {settings.installer}")
        if settings.installer == "uv":
            argv, environ = self._uv_install(env, file, requirements, settings, upgrade)
        else:
            argv, environ = self._pip_install(env, file, requirements, settings, legacy, upgrade)
        result = log.run(argv, env=environ, cwd=env.path, what=f"{settings.installer} install")
        if result.ok:
            return
        if phase.optional:
            log.info(
                f"the optional package {label} did not install; going on without it: {result.error_summary(200)}"
            )
            return
        raise BuildFailed(f"installing {label} failed: {result.error_summary()}")

    # -- uv ----------------------------------------------------------------------------------
    def _uv(self, settings: PipSettings) -> str:
        if not settings.executable:
            raise BuildFailed(
                "uv is not installed on this machine: pip install uv (or 'clearml-core-pkgmgr-pip[uv]'), "
                "or set agent.package_manager.type: pip with agent.package_manager.installer: pip"
            )
        return settings.executable

    def _check_uv_version(self, uv: str, settings: PipSettings, log: BuildLog) -> None:
        if not settings.uv_version:
            return
        from packaging.specifiers import InvalidSpecifier, SpecifierSet

        version = tool_version(uv)
        try:
            wanted = SpecifierSet(settings.uv_version.removeprefix("uv").strip())
        except InvalidSpecifier:
            log.info(
                f"agent.package_manager.uv_version {settings.uv_version!r} is not a version specifier; ignored"
            )
            return
        if version and version not in wanted:
            log.info(
                f"uv {version} does not match agent.package_manager.uv_version {settings.uv_version}; using it anyway"
            )

    def _uv_environ(self, settings: PipSettings, extra_indexes: tuple[str, ...] = ()) -> dict[str, str]:
        environ = dict(os.environ)
        environ["UV_PYTHON_DOWNLOADS"] = "never"
        environ.pop("VIRTUAL_ENV", None)
        extras: list[str] = list(extra_indexes)
        if settings.semantics == "pip":
            for name in _INDEX_VARIABLES:  # pip's view of the indexes, not uv's
                environ.pop(name, None)
            if settings.index.index_url:
                environ["UV_INDEX_URL"] = settings.index.index_url
            extras += settings.index.extra_index_urls
        else:
            extras += environ.get("UV_EXTRA_INDEX_URL", "").split()
        extras += settings.extra_index_urls
        if extras:
            environ["UV_EXTRA_INDEX_URL"] = " ".join(dict.fromkeys(extras))
        return environ

    def _cache_args_uv(self, settings: PipSettings) -> list[str]:
        return ["--cache-dir", settings.download_cache] if settings.download_cache else ["--no-cache"]

    def _uv_install(
        self, env: PythonEnv, file: Path, requirements: PipRequirements, settings: PipSettings, upgrade: bool
    ) -> tuple[list[str], dict[str, str]]:
        uv = self._uv(settings)
        argv = [uv, "pip", "install", "--python", str(env.python), "-r", str(file)]
        argv += ["--index-strategy", settings.index_strategy]
        if settings.force_upgrade or upgrade:
            argv.append("--upgrade")
        if settings.semantics == "pip":
            for link in settings.index.find_links:
                argv += ["--find-links", link]
            if settings.index.no_index:
                argv.append("--no-index")
            for host in settings.index.trusted_hosts:
                argv += ["--allow-insecure-host", host]
        argv += self._cache_args_uv(settings)
        argv += list(settings.extra_install_flags)
        torch_first = (requirements.torch_index,) if requirements.torch_index else ()
        return argv, self._uv_environ(settings, torch_first)

    def _sync(self, env: PythonEnv, lock: UvLock, settings: PipSettings, log: BuildLog) -> None:
        uv = self._uv(settings)
        environ = self._uv_environ(settings)
        environ["UV_PROJECT_ENVIRONMENT"] = str(env.path)
        argv = [
            uv,
            "sync",
            "--frozen" if lock.frozen else "--locked",
            "--no-install-workspace",
            *self._cache_args_uv(settings),
            *settings.sync_args,
        ]
        log.info(
            f"installing the project's uv.lock with uv sync (in {lock.project_dir})"
            + (
                ", as it is: agent.package_manager.uv_sync_locked_if_lock_file is false"
                if lock.frozen
                else ""
            )
        )
        result = log.run(argv, env=environ, cwd=Path(lock.project_dir), what="uv sync")
        if not result.ok:
            reason = result.error_summary()
            if "needs to be updated" in reason:  # uv's words for a lock pyproject.toml no longer matches
                reason += " Run `uv lock` in the project and commit uv.lock: the agent never locks again."
            raise BuildFailed(f"installing the project's uv.lock failed: {reason}")

    # -- pip ---------------------------------------------------------------------------------
    def _pip_install(
        self,
        env: PythonEnv,
        file: Path,
        requirements: PipRequirements,
        settings: PipSettings,
        legacy: bool,
        upgrade: bool,
    ) -> tuple[list[str], dict[str, str]]:
        argv = [str(env.python), "-m", "pip", "install", "--no-input", "--disable-pip-version-check"]
        argv += ["--progress-bar", "off", "-r", str(file)]
        if settings.force_upgrade or upgrade:
            argv.append("--upgrade")
        if legacy:
            argv.append("--use-deprecated=legacy-resolver")
        argv += ["--cache-dir", settings.download_cache] if settings.download_cache else ["--no-cache-dir"]
        argv += list(settings.extra_install_flags)
        environ = dict(os.environ)
        environ.pop("PIP_REQUIRE_VIRTUALENV", None)
        environ["VIRTUAL_ENV"] = str(env.path)
        ours = [
            *((requirements.torch_index,) if requirements.torch_index else ()),
            *settings.extra_index_urls,
        ]
        if ours:
            # PIP_EXTRA_INDEX_URL replaces pip.conf's value, so carry that over
            environ["PIP_EXTRA_INDEX_URL"] = " ".join(
                dict.fromkeys([*settings.index.extra_index_urls, *ours])
            )
        return argv, environ

    def _legacy_resolver(self, env: PythonEnv, settings: PipSettings) -> bool:
        if not settings.legacy_resolver:
            return False
        import importlib.metadata

        from packaging.specifiers import InvalidSpecifier, SpecifierSet

        dists = list(importlib.metadata.distributions(name="pip", path=[str(p) for p in env.site_packages()]))
        if not dists:
            return False
        version = dists[0].version
        for spec in settings.legacy_resolver:
            try:
                if version in SpecifierSet(spec):
                    return True
            except InvalidSpecifier:
                continue
        return False


class PipManager(_PipFamily):
    """``type: pip``: pip's semantics, installed by uv when available."""

    name = "pip"
    semantics = "pip"

    def _installer(self, context: BuildContext) -> tuple[str, str]:
        choice = (self.config.get_str(PM + "installer", "auto") or "auto").strip().lower()
        if self.config.get_bool(PM + "uv_replace_pip", False) and choice == "auto":
            choice = "uv"
        if choice == "pip":
            return "pip", ""
        if choice == "auto" and self.config.get_bool(PM + "system_site_packages", False):
            # pip counts what the system site-packages hold (a container's torch) as installed;
            # uv installs its own copy, so only pip keeps that promise
            return "pip", ""
        uv = find_uv(context.environ)
        if uv is None and choice == "auto":
            return "pip", ""
        return "uv", uv or ""

    def _pip_version(self) -> tuple[str, ...]:
        return pip_requirement_lines(self.config.get(PM + "pip_version"))


class UvManager(_PipFamily):
    """``type: uv``: uv's semantics; ``uv sync --locked`` for a repository with a ``uv.lock``."""

    name = "uv"
    semantics = "uv"

    def _installer(self, context: BuildContext) -> tuple[str, str]:
        return "uv", find_uv(context.environ) or ""

    def _index_strategy(self) -> str:
        return (
            "unsafe-best-match" if self.config.get_bool(PM + "uv_unsafe_best_match", False) else "first-index"
        )

    def _lock(self, context: BuildContext) -> UvLock | None:
        from_working_dir = self.config.get_bool(PM + "uv_files_from_repo_working_dir", False)
        folder = context.working_dir if from_working_dir else context.code_dir
        if folder is None or not (folder / "uv.lock").is_file():
            return None
        digest = hashlib.sha256()
        texts = {}
        for name in ("uv.lock", "pyproject.toml"):
            try:
                texts[name] = (folder / name).read_bytes()
            except OSError:
                texts[name] = b"-"
            digest.update(texts[name] + b"\0")
        local = local_sources(folder, texts["uv.lock"])
        return UvLock(
            digest=digest.hexdigest(),
            frozen=not self.config.get_bool(PM + "uv_sync_locked_if_lock_file", True),
            local=local.digests,
            uncacheable_reason=local.uncacheable_reason,
            project_dir=str(folder),
        )

    def detect(self, task: Task, repo_dir: Path | None) -> bool:
        return True
