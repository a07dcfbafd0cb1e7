"""The ``poetry`` package manager: a repository's ``poetry.lock``, installed exactly as locked.

It applies to a task whose code has a ``poetry.lock`` (at the repository root, or in the working
dir with ``poetry_files_from_repo_working_dir``); without one the agent hands the task to pip, as
clearml-agent does. What gets installed is what ``poetry install --no-root`` with
``poetry_install_extra_args`` would install: the lock's packages of the chosen groups and extras
for this interpreter, never a new resolution. The project itself is not installed: it runs from
the checkout, as with a ``uv.lock``.

Two ways to install it, with the same result:

* **uv, from the lock** (the default when it can): every package pinned to the lock's version and
  files (hashes checked), git dependencies at the locked commit, local folders from the checkout,
  installed with ``uv pip install --no-deps`` into a new environment. No Poetry is needed.
* **Poetry itself**, when the lock uses something that way cannot reproduce exactly (a lock
  format before 2.1, a source or a ``poetry install`` argument it does not know, a package
  without file hashes), when uv is missing, or when ``poetry_installer: poetry`` asks for it. The
  task's log says why. Poetry comes from ``PATH`` or a tool environment of the environment cache
  (:mod:`.tool`).

Before either, the lock must still match ``pyproject.toml`` (Poetry's ``content-hash``): a stale
lock fails the task with what to do; it is never locked again. The environment cache key is the
lock's digest, the chosen groups and extras, the digests of local folders the lock installs, and
the interpreter (added by the builder).
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from clearml_core_pkgmgr_pip.tools import find_uv

from clearml_core.environments import (
    BuildContext,
    BuildFailed,
    BuildLog,
    PackageManager,
    PythonEnv,
    PythonInfo,
    content_digest,
)
from clearml_core.environments.protocol import NOT_IN_FINGERPRINT
from clearml_core.errors import UserError
from clearml_core_pkgmgr_poetry import fastpath
from clearml_core_pkgmgr_poetry.lockfile import LockedPackage, PoetryLock, read_lock
from clearml_core_pkgmgr_poetry.options import SETTING as ARGS_SETTING
from clearml_core_pkgmgr_poetry.options import as_arguments, choose, parse_install_args
from clearml_core_pkgmgr_poetry.project import LockError, lock_is_current, read_project
from clearml_core_pkgmgr_poetry.tool import poetry_executable, poetry_requirement

if TYPE_CHECKING:
    from clearml_core.controlplane import Task

PM = "agent.package_manager."
LOCK_FILE = "poetry.lock"
PROJECT_FILE = "pyproject.toml"
BUILD_FOLDER = "clearml-build"
"""Inside each environment: the requirements file uv installed, as it was."""
INSTALLERS = ("auto", "poetry")
_INDEX_VARIABLES = ("UV_INDEX_URL", "UV_DEFAULT_INDEX", "UV_EXTRA_INDEX_URL", "UV_INDEX", "UV_FIND_LINKS")
_FOREIGN_ENVIRONMENTS = ("VIRTUAL_ENV", "CONDA_PREFIX", "CONDA_DEFAULT_ENV", "PYTHONPATH", "PYTHONHOME")


@dataclass(frozen=True)
class PoetryRequirements:
    """The part of a lock to install, and who installs it."""

    lock: str
    """sha256 of ``poetry.lock`` (which was checked against ``pyproject.toml``)."""
    groups: tuple[str, ...]
    extras: tuple[str, ...]
    installer: str
    """``uv`` (from the lock) or ``poetry`` (``poetry install``)."""
    skip_directories: bool = False
    compile: bool = False
    poetry: str = ""
    """With the ``poetry`` installer: the requirement for Poetry itself ("": the one on PATH, or the latest)."""
    install_args: tuple[str, ...] = ()
    """With the ``poetry`` installer: ``poetry_install_extra_args``, as Poetry reads them."""
    digests: tuple[tuple[str, str], ...] = ()
    """Local folders the lock installs (relative to the project) and their content digests."""
    uncacheable_reason: str = ""
    why_poetry: str = field(default="", metadata=NOT_IN_FINGERPRINT)
    project_dir: str = field(default="", metadata=NOT_IN_FINGERPRINT)
    lock_file: str = field(default=LOCK_FILE, metadata=NOT_IN_FINGERPRINT)
    """The lock's path as the task log shows it (relative to the code)."""

    def __bool__(self) -> bool:
        return True  # a lock always gets its own environment, even one that installs nothing here


@dataclass(frozen=True)
class PoetrySettings:
    """Where the tools and their downloads are; nothing of it changes the environment."""

    uv: str = field(default="", metadata=NOT_IN_FINGERPRINT)
    download_root: str = field(default="", metadata=NOT_IN_FINGERPRINT)
    """``agent.pip_download_cache.path`` (uv's downloads in ``uv/``, Poetry's in ``poetry/``); "": none."""


class PoetryManager(PackageManager):
    """``type: poetry``: the repository's ``poetry.lock`` (see the module documentation)."""

    name = "poetry"

    # -- which project -----------------------------------------------------------------------
    def _from_working_dir(self) -> bool:
        return self.config.get_bool(PM + "poetry_files_from_repo_working_dir", False)

    def detect(self, task: Task, repo_dir: Path | None) -> bool:
        if repo_dir is None:
            return False
        folder = repo_dir
        if self._from_working_dir():
            folder = (repo_dir / (task.script.working_dir or ".")).resolve()
        return (folder / LOCK_FILE).is_file()

    def _project_dir(self, context: BuildContext) -> Path:
        folder = context.working_dir if self._from_working_dir() else context.code_dir
        if folder is None or not (folder / LOCK_FILE).is_file():
            where = f"in {folder}" if folder is not None else "(the task has no code here)"
            raise LockError(
                f"no {LOCK_FILE} {where}: the poetry package manager installs a project's lock "
                "(the agent hands a task without one to pip)"
            )
        return folder

    # -- what to install ---------------------------------------------------------------------
    def requirements(self, task: Task, context: BuildContext) -> PoetryRequirements:
        folder = self._project_dir(context)
        shown = _shown(folder / LOCK_FILE, context.code_dir)
        try:
            data = (folder / LOCK_FILE).read_bytes()
        except OSError as error:
            raise LockError(f"cannot read {shown}: {error.strerror or error}") from None
        lock = read_lock(folder / LOCK_FILE, data, shown=shown)
        project = read_project(folder / PROJECT_FILE)
        if not lock_is_current(project, lock.content_hash, lock.generator):
            raise LockError(
                f"{shown} does not match {_shown(folder / PROJECT_FILE, context.code_dir)} (pyproject.toml "
                f"changed after the lock was written): run `poetry lock` in the project and commit "
                f"{LOCK_FILE}; the agent installs a lock as it is and never locks again"
            )
        args = as_arguments(self.config.get(PM + "poetry_install_extra_args"))
        parsed = parse_install_args(args)
        choice = choose(parsed, project, lock)
        why_poetry = self._why_poetry(parsed.foreign, lock, context)
        digests, uncacheable = _local_folders(lock.packages, choice.groups, folder)
        installer = "poetry" if why_poetry else "uv"
        return PoetryRequirements(
            lock=lock.digest,
            groups=choice.groups,
            extras=choice.extras,
            installer=installer,
            skip_directories=choice.skip_directories,
            compile=choice.compile,
            poetry=poetry_requirement(self.config.get(PM + "poetry_version")) if why_poetry else "",
            install_args=args if why_poetry else (),
            digests=digests,
            uncacheable_reason=uncacheable,
            why_poetry=why_poetry,
            project_dir=str(folder),
            lock_file=shown,
        )

    def _why_poetry(self, foreign: tuple[str, ...], lock: PoetryLock, context: BuildContext) -> str:
        """Why Poetry itself must install this lock; "" when uv reproduces it exactly."""
        choice = (self.config.get_str(PM + "poetry_installer", "auto") or "auto").strip().lower()
        if choice not in INSTALLERS:
            raise UserError(
                f"agent.package_manager.poetry_installer is {choice!r}; use one of {', '.join(INSTALLERS)}"
            )
        if choice == "poetry":
            return "agent.package_manager.poetry_installer is poetry"
        if foreign:
            return f"{ARGS_SETTING} has arguments only Poetry knows: {' '.join(foreign)}"
        reason = fastpath.blocker(lock)
        if reason:
            return reason
        if find_uv(context.environ) is None:
            return "uv is not installed on this machine"
        return ""

    def settings(self, context: BuildContext) -> PoetrySettings:
        root = ""
        if self.config.get_bool("agent.pip_download_cache.enabled", True):
            path = self.config.path("agent.pip_download_cache.path")
            root = str(path) if path is not None else ""
        return PoetrySettings(uv=find_uv(context.environ) or "", download_root=root)

    def describe(self, requirements: Any, settings: Any) -> dict[str, Any]:
        assert isinstance(requirements, PoetryRequirements)
        summary: dict[str, Any] = {
            "manager": self.name,
            "lock": requirements.lock_file,
            "installer": requirements.installer,
            "groups": list(requirements.groups),
            "extras": list(requirements.extras),
        }
        if requirements.why_poetry:
            summary["why_poetry"] = requirements.why_poetry
        return summary

    # -- building ----------------------------------------------------------------------------
    def create(self, target: Path, python: PythonInfo, settings: Any, log: BuildLog) -> PythonEnv:
        """An empty environment, made as the uv manager makes one (``uv venv``; without uv, ``venv``)."""
        from clearml_core_pkgmgr_pip.managers import PipSettings, UvManager

        assert isinstance(settings, PoetrySettings)
        made_by = PipSettings(
            semantics="uv",
            installer="uv" if settings.uv else "pip",
            executable=settings.uv,
            download_cache=_uv_cache_dir(settings),
        )
        return UvManager(self.config).create(target, python, made_by, log)

    def install(self, env: PythonEnv, requirements: Any, settings: Any, log: BuildLog) -> None:
        assert isinstance(requirements, PoetryRequirements) and isinstance(settings, PoetrySettings)
        if requirements.installer == "uv":
            self._install_with_uv(env, requirements, settings, log)
        else:
            self._install_with_poetry(env, requirements, settings, log)

    def _install_with_uv(
        self, env: PythonEnv, requirements: PoetryRequirements, settings: PoetrySettings, log: BuildLog
    ) -> None:
        from clearml_core_pkgmgr_poetry.selection import check_python, marker_environment, select

        folder = Path(requirements.project_dir)
        lock = read_lock(folder / LOCK_FILE)
        if lock.digest != requirements.lock:
            raise BuildFailed(f"{requirements.lock_file} changed while its environment was being built")
        environment = marker_environment(env.python)
        check_python(lock, environment)
        packages = select(lock, requirements.groups, requirements.extras, environment)
        if requirements.skip_directories:
            packages = [package for package in packages if package.source.type != "directory"]
        build = env.path / BUILD_FOLDER
        build.mkdir(parents=True, exist_ok=True)
        file = build / "poetry-lock.txt"
        file.write_text(
            "".join(fastpath.requirement_line(package, folder) + "\n" for package in packages),
            encoding="utf-8",
        )
        log.info(
            f"installing {len(packages)} packages of {requirements.lock_file} with uv, pinned and hash-checked "
            f"(groups: {', '.join(requirements.groups) or 'none'}; extras: {', '.join(requirements.extras) or 'none'})"
        )
        if not packages:
            return
        argv = [settings.uv, "pip", "install", "--python", str(env.python), "--no-deps"]
        argv += ["--index-strategy", "unsafe-best-match", "-r", str(file), *_uv_cache(settings)]
        if requirements.compile:
            argv.append("--compile-bytecode")
        result = log.run(argv, env=_index_environ(packages), cwd=folder, what="uv pip install")
        if not result.ok:
            raise BuildFailed(f"installing {requirements.lock_file} failed: {result.error_summary()}")

    def _install_with_poetry(
        self, env: PythonEnv, requirements: PoetryRequirements, settings: PoetrySettings, log: BuildLog
    ) -> None:
        from clearml_core.environments.cache import EnvironmentCache

        log.info(f"installing {requirements.lock_file} with Poetry: {requirements.why_poetry}")
        with (
            poetry_executable(
                requirements.poetry,
                cache=EnvironmentCache.from_config(self.config),
                uv=settings.uv,
                download_cache=_uv_cache_dir(settings),
                environ=os.environ,
                log=log,
            ) as poetry,
            tempfile.TemporaryDirectory(prefix="clearml-poetry-") as scratch,
        ):
            environ = {k: v for k, v in os.environ.items() if k not in _FOREIGN_ENVIRONMENTS}
            environ.update(env.activation(environ))
            environ["POETRY_NO_INTERACTION"] = "1"
            # no record of Poetry's own environments: it must take the activated one (VIRTUAL_ENV)
            environ["POETRY_VIRTUALENVS_PATH"] = str(Path(scratch) / "virtualenvs")
            environ["POETRY_CACHE_DIR"] = (
                str(Path(settings.download_root) / "poetry")
                if settings.download_root
                else str(Path(scratch) / "cache")
            )
            argv = [
                poetry,
                "install",
                "--no-root",
                "--no-interaction",
                "--no-ansi",
                *requirements.install_args,
            ]
            result = log.run(argv, env=environ, cwd=Path(requirements.project_dir), what="poetry install")
        if not result.ok:
            raise BuildFailed(
                f"installing {requirements.lock_file} with Poetry failed: {result.error_summary()}"
            )


def _shown(path: Path, code_dir: Path | None) -> str:
    """``path`` relative to the code, as the task's log shows it."""
    if code_dir is not None:
        try:
            return str(path.relative_to(code_dir))
        except ValueError:
            pass
    return str(path)


def _local_folders(
    packages: tuple[LockedPackage, ...], groups: tuple[str, ...], project_dir: Path
) -> tuple[tuple[tuple[str, str], ...], str]:
    """Content digests of the folders the chosen groups may install, and why the environment
    cannot be shared when one is installed in develop (editable) mode."""
    digests: dict[str, str] = {}
    uncacheable = ""
    for package in packages:
        if package.source.type != "directory" or not set(package.groups) & set(groups):
            continue
        path = fastpath.local_path(package, project_dir)
        if package.develop:
            uncacheable = uncacheable or (
                f"poetry.lock installs {package.name} from {package.source.url} in develop mode, "
                "pointing into a folder that may change or go away"
            )
            continue
        digest = content_digest(path) if path.is_dir() else "missing"
        if digest is None:
            uncacheable = uncacheable or f"the local folder {package.source.url} is too large to fingerprint"
            digest = "too-large"
        digests[package.source.url] = digest
    return tuple(sorted(digests.items())), uncacheable


def _uv_cache_dir(settings: PoetrySettings) -> str:
    """uv's download cache: the one the pip and uv managers use too (``<root>/uv``)."""
    return str(Path(settings.download_root) / "uv") if settings.download_root else ""


def _uv_cache(settings: PoetrySettings) -> list[str]:
    folder = _uv_cache_dir(settings)
    return ["--cache-dir", folder] if folder else ["--no-cache"]


def _index_environ(packages: list[LockedPackage]) -> dict[str, str]:
    """uv's environment: the lock's sources as its indexes (through variables, so a password in one
    stays out of process listings), with Poetry's ``POETRY_HTTP_BASIC_<SOURCE>_*`` credentials."""
    environ = {key: value for key, value in os.environ.items() if key != "VIRTUAL_ENV"}
    environ["UV_PYTHON_DOWNLOADS"] = "never"
    urls, from_pypi = fastpath.index_urls(packages)
    names = {package.source.url: package.source.reference for package in packages}
    urls = [_with_credentials(url, names.get(url, ""), environ) for url in urls]
    for name in ("UV_EXTRA_INDEX_URL", "UV_INDEX", "UV_FIND_LINKS", "UV_NO_INDEX"):
        environ.pop(name, None)  # indexes the lock does not name
    if not from_pypi and urls:
        for name in _INDEX_VARIABLES:
            environ.pop(name, None)
        environ["UV_INDEX_URL"], urls = urls[0], urls[1:]
    if urls:
        environ["UV_EXTRA_INDEX_URL"] = " ".join(urls)
    return environ


def _with_credentials(url: str, source: str, environ: dict[str, str]) -> str:
    """``url`` with the user and password Poetry would send to ``source`` from its environment."""
    import re
    from urllib.parse import quote, urlsplit, urlunsplit

    if not source:
        return url
    key = re.sub(r"[^A-Z0-9]+", "_", source.upper())
    user = environ.get(f"POETRY_HTTP_BASIC_{key}_USERNAME", "")
    password = environ.get(f"POETRY_HTTP_BASIC_{key}_PASSWORD", "")
    parts = urlsplit(url)
    if not (user or password) or "@" in parts.netloc:
        return url
    netloc = f"{quote(user, safe='')}:{quote(password, safe='')}@{parts.netloc}"
    return urlunsplit(parts._replace(netloc=netloc))
