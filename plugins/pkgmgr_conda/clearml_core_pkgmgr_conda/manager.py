"""The ``conda`` package manager: a task's conda request, solved, linked into a prefix, then pip.

The order of the protocol's steps, for conda:

* ``requirements`` reads what the task asks for (:mod:`.inputs`: its conda requirements, else
  its code's environment.yml, else a conda Python for its pip requirements), with the Python and
  the channels decided, and its pip side split into install phases by the pip manager
  (``priority_packages``, ``post_packages``, … as in pip mode).
* ``resolve`` solves it (:mod:`.solver`; cached by the request and the channels' repository
  data), so the environment's cache key is the exact list of packages.
* ``create`` links the solved conda packages into the new prefix (:mod:`.engines`): those the
  last ``resolve`` of this manager decided (the builder calls both on one manager), else, called
  on its own, the Python alone. ``install`` links what is missing (nothing, after a resolved
  ``create``), records the environment's variables and installs the pip phases with the pip
  manager (uv when available) into the prefix's Python. One solve and one link transaction, as
  bare rattler does.
* ``freeze`` reads the prefix: conda packages pinned with build and channel, then pip's.

Two modes take an environment as it is instead: ``conda_env_as_base_docker`` (a prepared prefix,
used read-only, or a conda-pack archive unpacked once into the cache) and ``use_conda_base_env``
(the task's packages installed into the conda installation's base environment). Neither is cached
(but the unpacked archive).
"""

from __future__ import annotations

import os
import tarfile
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from clearml_core_pkgmgr_pip.managers import PipManager, PipRequirements, PipSettings

from clearml_core.environments import (
    NOT_IN_FINGERPRINT,
    BuildContext,
    BuildFailed,
    BuildLog,
    PackageManager,
    PythonEnv,
    PythonInfo,
    RequirementsError,
    task_requirements,
)
from clearml_core.environments.conda_meta import (
    META_FOLDER,
    environment_yaml,
    is_conda_prefix,
    public_channel,
)
from clearml_core_pkgmgr_conda import engines, prefix, solver
from clearml_core_pkgmgr_conda.channels import channel_urls
from clearml_core_pkgmgr_conda.inputs import (
    CondaRequest,
    conda_names,
    find_environment_file,
    merge_pip,
    parse_conda_text,
    read_environment_file,
    spec_name,
)

if TYPE_CHECKING:
    from rattler import RepoDataRecord

    from clearml_core.controlplane import Task

PM = "agent.package_manager."
ENGINES = ("rattler", "binary")
PACKED_SUFFIXES = (".tar.gz", ".tgz", ".tar")
ENV_PACKAGE_VARIABLE = "CLEARML_CONDA_ENV_PACKAGE"
BASE_ENV_VARIABLE = "CLEARML_USE_CONDA_BASE_ENV"
_TRUE = {"1", "true", "yes", "on", "y"}


@dataclass(frozen=True)
class CondaRequirements:
    """What a task's conda environment holds: the request, and once resolved, the solution."""

    specs: tuple[str, ...] = ()
    """Conda match specs, the Python included."""
    channels: tuple[str, ...] = ()
    """Channel URLs in priority order (the request's, then ``conda_channels``)."""
    pip: PipRequirements | None = None
    variables: tuple[tuple[str, str], ...] = ()
    solution: tuple[solver.SolvedPackage, ...] = ()
    """The solved packages (``resolve``): what goes into the cache key."""
    existing: str = ""
    """An environment used as it is: a prepared prefix, or the base environment."""
    read_only: bool = False
    """Nothing is installed into ``existing`` (a prepared environment)."""
    packed: str = ""
    """A conda-pack archive's identity (path, size, modification time), unpacked as the environment."""
    uncacheable_reason: str = ""
    cuda: str = field(default="", metadata=NOT_IN_FINGERPRINT)
    """The CUDA version ``__cuda`` is solved with (the solution shows its effect)."""
    lock_file: str = field(default="", metadata=NOT_IN_FINGERPRINT)
    """The solve cache's lock file with the solution's full records."""
    solved_now: bool = field(default=False, metadata=NOT_IN_FINGERPRINT)
    source: str = field(default="", metadata=NOT_IN_FINGERPRINT)

    def __bool__(self) -> bool:
        return bool(self.specs or self.pip or self.existing or self.packed)


@dataclass(frozen=True)
class CondaSettings:
    """How the environment is solved and linked; only the pip side's settings are in the key (the
    solution already shows what the rest changed)."""

    pip: PipSettings
    subdirs: tuple[str, ...] = field(default=(), metadata=NOT_IN_FINGERPRINT)
    python: str = field(default="", metadata=NOT_IN_FINGERPRINT)
    """``python 3.11.*``: the Python of a request that names none."""
    constraints: tuple[str, ...] = field(default=(), metadata=NOT_IN_FINGERPRINT)
    engine: str = field(default="rattler", metadata=NOT_IN_FINGERPRINT)
    binary: str = field(default="", metadata=NOT_IN_FINGERPRINT)
    cache_dir: str = field(default="", metadata=NOT_IN_FINGERPRINT)
    """``<agent.pip_download_cache.path>/conda`` (repodata, pkgs, solves); "" when that cache is off."""
    full_env_update: bool = field(default=False, metadata=NOT_IN_FINGERPRINT)


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in _TRUE


class CondaManager(PackageManager):
    """``type: conda`` (see the module documentation)."""

    name = "conda"

    def __init__(self, config: Any) -> None:
        super().__init__(config)
        self._pip = PipManager(config)
        self._resolved: CondaRequirements | None = None
        """What the last ``resolve`` decided: ``create`` links it."""

    # -- what to install ---------------------------------------------------------------------
    def requirements(self, task: Task, context: BuildContext) -> CondaRequirements:
        environ = context.environ
        prepared = self._prepared_environment(context)
        if prepared is not None:
            return prepared
        request = self._request(task, context)
        specs = list(request.specs)
        if not any(spec_name(spec) == "python" for spec in specs):
            specs.insert(0, self._python_spec(context))
        configured = self.config.get_list(PM + "conda_channels")
        channels = channel_urls([*request.channels, *map(str, configured)], no_defaults=request.no_defaults)
        pip_lines = merge_pip(
            request.pip,
            task_requirements(
                task, code_dir=context.code_dir, working_dir=context.working_dir, config=self.config
            ),
            skip=conda_names(tuple(specs)),
        )
        pip = self._pip.split(pip_lines, context) if pip_lines else None
        requirements = CondaRequirements(
            specs=tuple(specs),
            channels=channels,
            pip=pip,
            variables=request.variables,
            cuda=context.cuda_version or "",
            uncacheable_reason=pip.uncacheable_reason if pip is not None else "",
            source=request.source or (pip.source if pip is not None else ""),
        )
        if self._use_base(environ):
            base = prefix.base_prefix(environ, self._binary_path(environ, required=False))
            if base is None:
                raise RequirementsError(
                    "use_conda_base_env is set, but no base conda environment was found: activate conda "
                    "(CONDA_EXE), set MAMBA_ROOT_PREFIX, or name the binary in agent.package_manager.conda_binary"
                )
            return replace(
                requirements,
                existing=str(base),
                uncacheable_reason=f"the task's packages go into the base conda environment {base} (use_conda_base_env)",
            )
        return requirements

    def _request(self, task: Task, context: BuildContext) -> CondaRequest:
        text = (task.requirements.conda or "").strip()
        if text:
            base = context.working_dir if context.working_dir is not None else context.code_dir
            return parse_conda_text(
                text,
                what="the task's conda requirements",
                base_dir=base,
                code_dir=context.code_dir,
                source="task",
            )
        found = find_environment_file(context.code_dir, context.working_dir)
        if found is not None:
            return read_environment_file(found, code_dir=context.code_dir)
        return CondaRequest()

    def _python_spec(self, context: BuildContext) -> str:
        wanted = str(self.config.get("agent.default_python") or "").strip().removeprefix("python")
        if not wanted:
            wanted = ".".join(context.python.version.split(".")[:2])
        return f"python {wanted}.*" if wanted.count(".") < 2 else f"python =={wanted}"

    def _use_base(self, environ: Mapping[str, str]) -> bool:
        if environ.get(BASE_ENV_VARIABLE, "").strip():
            return _truthy(environ.get(BASE_ENV_VARIABLE))
        return self.config.get_bool(PM + "use_conda_base_env", False)

    def _prepared_environment(self, context: BuildContext) -> CondaRequirements | None:
        """``conda_env_as_base_docker``: the environment ``CLEARML_CONDA_ENV_PACKAGE`` (or the
        task's image) names, as it is; None when that mode is off or names nothing."""
        package = context.environ.get(ENV_PACKAGE_VARIABLE, "").strip()
        if not package and not self.config.get_bool(PM + "conda_env_as_base_docker", False):
            return None
        where = package or context.image
        if not where:
            return None
        path = Path(where).expanduser()
        if path.is_dir():
            if not is_conda_prefix(path):
                raise RequirementsError(
                    f"{path} (conda_env_as_base_docker) is not a conda environment: it has no conda-meta"
                )
            return CondaRequirements(
                existing=str(path.absolute()),
                read_only=True,
                uncacheable_reason=f"the prepared conda environment {path} is used as it is",
                source=str(path),
            )
        if path.is_file() and path.name.endswith(PACKED_SUFFIXES):
            status = path.stat()
            return CondaRequirements(
                packed=f"{path.absolute()}:{status.st_size}:{status.st_mtime_ns}", source=str(path)
            )
        raise RequirementsError(
            f"{where} (conda_env_as_base_docker / {ENV_PACKAGE_VARIABLE}) is neither a conda environment "
            f"folder nor a packed one ({', '.join(PACKED_SUFFIXES)})"
        )

    # -- how ---------------------------------------------------------------------------------
    def settings(self, context: BuildContext) -> CondaSettings:
        config = self.config
        engine = (config.get_str(PM + "conda_engine", "rattler") or "rattler").strip().lower()
        if engine not in ENGINES:
            raise RequirementsError(
                f"agent.package_manager.conda_engine {engine!r} is not one of {', '.join(ENGINES)}"
            )
        cache_dir = ""
        if config.get_bool("agent.pip_download_cache.enabled", True):
            root = config.path("agent.pip_download_cache.path")
            if root is not None:
                cache_dir = str(root / "conda")
        cudnn = str(config.get("agent.cudnn_version") or "").strip()
        return CondaSettings(
            pip=replace(self._pip.settings(context), pip_version=()),  # conda's pip stays conda's
            subdirs=(solver.current_subdir(), "noarch"),
            python=self._python_spec(context),
            constraints=(f"cudnn {_version_pattern(cudnn)}",) if cudnn else (),
            engine=engine,
            binary=str(config.get_str(PM + "conda_binary", "") or ""),
            cache_dir=cache_dir,
            full_env_update=config.get_bool(PM + "conda_full_env_update", False),
        )

    def describe(self, requirements: Any, settings: Any) -> dict[str, Any]:
        assert isinstance(requirements, CondaRequirements) and isinstance(settings, CondaSettings)
        summary: dict[str, Any] = {
            "manager": self.name,
            "engine": settings.engine,
            "source": requirements.source,
        }
        if requirements.existing:
            summary["existing"] = requirements.existing
        if requirements.packed:
            summary["packed"] = requirements.packed.rsplit(":", 2)[0]
        if requirements.channels:
            summary["channels"] = [public_channel(url) for url in requirements.channels]
        if requirements.solution:
            summary["conda_packages"] = len(requirements.solution)
        if requirements.pip is not None:
            summary["pip_requirements"] = requirements.pip.count
        return summary

    # -- solving -----------------------------------------------------------------------------
    def resolve(
        self, requirements: Any, settings: Any, context: BuildContext, log: BuildLog | None
    ) -> CondaRequirements:
        assert isinstance(requirements, CondaRequirements) and isinstance(settings, CondaSettings)
        resolved = requirements
        if requirements.specs and not (requirements.read_only or requirements.packed):
            resolved = self._solve(requirements, settings, log)
        self._resolved = resolved
        return resolved

    def _solve(
        self, requirements: CondaRequirements, settings: CondaSettings, log: BuildLog | None
    ) -> CondaRequirements:
        cache = Path(settings.cache_dir) if settings.cache_dir else None
        request = solver.SolveRequest(
            specs=requirements.specs,
            channels=requirements.channels,
            subdirs=settings.subdirs,
            virtual_packages=solver.virtual_packages(requirements.cuda or None),
            constraints=settings.constraints,
            # the base environment: what it holds is preferred, and stays
            installed_prefix=requirements.existing,
        )
        # without the download cache: no solution is reused; repodata is kept in a temporary folder
        scratch = Path(tempfile.gettempdir()) / "clearml-conda-uncached"
        solution = solver.solve(
            request,
            solver.SolveCache(cache / "solves" if cache is not None else None),
            repodata_dir=(cache or scratch) / "repodata",
            scratch=scratch / "solves",
            log=log,
        )
        return replace(
            requirements,
            solution=solution.packages,
            lock_file=str(solution.lock_file),
            solved_now=not solution.cached,
        )

    def _records(
        self, requirements: CondaRequirements, settings: CondaSettings, log: BuildLog
    ) -> tuple[CondaRequirements, list[RepoDataRecord]]:
        """The solution's full records (solving again if its cache entry went away meanwhile)."""
        if not requirements.lock_file or not Path(requirements.lock_file).is_file():
            requirements = self._solve(requirements, settings, log)
        return requirements, solver.read_lock_file(Path(requirements.lock_file))

    # -- building ----------------------------------------------------------------------------
    def create(self, target: Path, python: PythonInfo, settings: Any, log: BuildLog) -> PythonEnv:
        assert isinstance(settings, CondaSettings)
        log.check()
        resolved = self._resolved
        if resolved is not None and resolved.existing:
            env = PythonEnv(Path(resolved.existing))
            log.info(
                f"using the conda environment {env.path} as it is" + ("" if resolved.read_only else " (base)")
            )
            if not env.python.exists():
                raise BuildFailed(
                    f"the conda environment {env.path} has no bin/python; install python into it"
                )
            return env
        if resolved is not None and resolved.packed:
            return self._unpack(target, resolved.packed.rsplit(":", 2)[0], log)
        if resolved is None or not resolved.solution:
            # not resolved first (a direct call): an environment with the requested Python alone
            log.info(f"creating a conda environment with {settings.python}")
            resolved = self._solve(
                CondaRequirements(specs=(settings.python,), channels=self._channels()), settings, log
            )
        resolved, records = self._records(resolved, settings, log)
        self._link(target, records, settings, log)
        env = PythonEnv(target)
        if not env.python.exists():
            raise BuildFailed(
                f"the conda environment at {target} has no bin/python after linking "
                f"{', '.join(p.name for p in resolved.solution if p.name.startswith('python')) or 'no python package'}"
            )
        return env

    def install(self, env: PythonEnv, requirements: Any, settings: Any, log: BuildLog) -> None:
        assert isinstance(requirements, CondaRequirements) and isinstance(settings, CondaSettings)
        if requirements.read_only or requirements.packed:
            log.info("the prepared conda environment is used as it is: nothing is installed into it")
            return
        if not (env.path / META_FOLDER).is_dir():
            raise BuildFailed(
                f"{env.path} is not a conda environment: conda packages cannot be installed into a plain "
                "interpreter (--install-globally is for pip environments)"
            )
        if requirements.specs and not _holds(env.path, requirements.solution):
            requirements, records = self._records(requirements, settings, log)
            self._link(env.path, records, settings, log, keep_others=bool(requirements.existing))
        prefix.write_variables(env.path, requirements.variables)
        if requirements.pip is not None:
            log.info(
                f"installing the pip packages into the conda environment ({requirements.pip.count} requirements)"
            )
            self._pip.install(env, requirements.pip, settings.pip, log)

    def _link(
        self,
        target: Path,
        records: list[RepoDataRecord],
        settings: CondaSettings,
        log: BuildLog,
        *,
        keep_others: bool = False,
    ) -> None:
        """Link ``records`` into ``target``; ``keep_others`` leaves what else it holds alone."""
        if settings.engine == "binary":
            binary = self._binary_path(os.environ, required=True)
            assert binary is not None
            engines.link_with_binary(binary, target, records, dict(os.environ), log)
            return
        keep = engines.other_packages(target, records) if keep_others else set()
        if not settings.cache_dir:
            with tempfile.TemporaryDirectory(prefix="clearml-conda-pkgs-") as scratch:
                engines.link_with_rattler(target, records, Path(scratch), log, keep=keep)
            return
        engines.link_with_rattler(target, records, Path(settings.cache_dir) / "pkgs", log, keep=keep)

    def _binary_path(self, environ: Mapping[str, str], *, required: bool) -> str | None:
        configured = str(self.config.get_str(PM + "conda_binary", "") or "")
        found = engines.find_binary(configured, environ.get("PATH"))
        if found is None and required:
            raise BuildFailed(
                (
                    f"agent.package_manager.conda_binary {configured!r} is not an executable"
                    if configured.strip()
                    else "conda_engine is binary, but no micromamba, mamba or conda is on PATH"
                )
                + "; install one, name it in agent.package_manager.conda_binary, or set conda_engine: rattler"
            )
        return found

    def _channels(self) -> tuple[str, ...]:
        return channel_urls(map(str, self.config.get_list(PM + "conda_channels")))

    def _unpack(self, target: Path, archive: str, log: BuildLog) -> PythonEnv:
        """A conda-pack archive unpacked at ``target``, its prefixes fixed by its ``conda-unpack``."""
        log.info(f"unpacking the conda environment {archive}")
        target.mkdir(parents=True)
        try:
            with tarfile.open(archive) as packed:
                # "tar", not "data": an environment's links may point to absolute paths (its Python);
                # Pythons before the extraction filters (3.10.11) take no filter argument
                if hasattr(tarfile, "tar_filter"):
                    packed.extractall(target, filter="tar")
                else:  # pragma: no cover
                    packed.extractall(target)  # noqa: S202
        except (OSError, tarfile.TarError) as error:
            raise BuildFailed(f"cannot unpack the conda environment {archive}: {error}") from None
        fixer = target / "bin" / "conda-unpack"
        if fixer.is_file():
            result = log.run([str(target / "bin" / "python"), str(fixer)], cwd=target, what="conda-unpack")
            if not result.ok:
                raise BuildFailed(f"conda-unpack of {archive} failed: {result.error_summary()}")
        env = PythonEnv(target)
        if not env.python.exists():
            raise BuildFailed(f"the packed conda environment {archive} has no bin/python")
        return env

    def freeze(self, env: PythonEnv) -> list[str]:
        return prefix.freeze(env.path)

    def activation(self, env: PythonEnv, environ: Mapping[str, str] | None = None) -> dict[str, str]:
        return prefix.activation(env.path, environ)

    def requirements_update(self, requirements: Any, settings: Any, frozen: list[str]) -> dict[str, Any]:
        """``conda_full_env_update``: the task's conda requirements become the environment as built."""
        assert isinstance(settings, CondaSettings)
        if not settings.full_env_update or not frozen:
            return {}
        conda = [line for line in frozen if "[channel=" in line]
        pip = [line for line in frozen if "[channel=" not in line]
        return {
            "conda": environment_yaml(conda, pip, comment="the environment as built (conda_full_env_update)")
        }


def _holds(path: Path, solution: tuple[solver.SolvedPackage, ...]) -> bool:
    """Whether the prefix at ``path`` has every package of ``solution`` linked already (``create`` did it)."""
    return bool(solution) and {p.file_name for p in solution} <= engines.installed_files(path)


def _version_pattern(version: str) -> str:
    """``8.9`` → ``8.9.*`` (a major.minor pins the series), a full version stays exact."""
    return f"{version}.*" if version.count(".") < 2 and "*" not in version else version


__all__ = ["CondaManager", "CondaRequirements", "CondaSettings"]
