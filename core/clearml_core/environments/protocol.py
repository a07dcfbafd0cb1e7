"""The package-manager protocol: what pip, uv, conda and poetry plugins implement.

A package manager turns a task's requirements into a Python environment in a folder. The agent
drives it in this order, and nothing else:

1. ``detect(task, repo_dir)`` — does this manager apply to the task? The agent uses the manager
   named by ``agent.package_manager.type``; one that does not apply (poetry without a
   ``poetry.lock``) hands over to ``pip``.
2. ``requirements(task, context)`` and ``settings(context)`` — what to install and how, as small
   frozen dataclasses of JSON-able values. Both must be cheap (no network, no process): the agent
   computes them before every task, and a cache hit must cost milliseconds.
3. ``resolve(requirements, settings, context, log)`` (optional) — what will be installed, when
   that is not yet in the requirements: a manager whose packages come from a solver (conda)
   returns the requirements with the solution in them, so the cache key names the exact packages
   rather than the request. The same request against a changed repository then gets a new key
   only when the solution changes. It is called before every task too, so a manager keeps its
   own cache of solutions, keyed on the request and on the identity of the repository data it
   solved against (a local file's size and modification time, a downloaded copy's hash), and
   solves only when one of them changed: a repeated request costs file reads. It may use the
   network where the repository data it keeps is stale, and raises ``BuildFailed`` (an
   unsatisfiable request, an unreachable repository) with one sentence. The default returns the
   requirements as they are.
4. ``fingerprint(task, context)`` hashes the resolved requirements and the settings: it is the
   manager's part of the environment-cache key (the agent adds the manager's name, the
   interpreter, the platform and the container image). Only what changes the built environment
   goes into the hash: mark other fields (a download cache's path, the request a solution came
   from) with ``field(metadata=NOT_IN_FINGERPRINT)``.
5. ``create(target, python, settings, log)`` — make an empty environment at ``target`` (a
   folder that does not exist yet) from the interpreter ``python``. A manager that uses an
   existing environment as it is (conda's base environment) returns that one instead; its
   requirements then say ``uncacheable_reason``, and the agent neither caches nor deletes it.
6. ``install(env, requirements, settings, log)`` — install into it. Raise
   :class:`~clearml_core.environments.process.BuildFailed` with one sentence a user can act on
   (``CommandResult.error_summary()`` extracts it from an installer's output); run every command
   through ``log.run`` so its output reaches the task log and an abort stops it.
7. ``freeze(env)`` — the exact packages now installed (``name==version`` lines); recorded on the
   task as ``requirements.frozen``. The default reads the environment's ``*.dist-info``.

The environment is built at its final path (virtual environments do not survive a move) and is
declared complete by the cache only after ``freeze`` returned; a manager never has to clean up
after a failure. A manager whose requirements point into the task's own checkout (an editable
install) says so with ``uncacheable_reason`` and gets a private, uncached environment. When the
task runs, ``activation(env)`` gives the variables that put the environment first (``PATH``,
``VIRTUAL_ENV``; a conda environment's ``CONDA_PREFIX``), and ``requirements_update`` may ask
for more of the task's requirements to be rewritten besides ``frozen``.

Register a manager with the ``clearml_package_managers`` hook (a
:class:`~clearml_core.specs.PackageManagerSpec` whose factory is the class; it is called as
``factory(config)``). The contract tests in ``clearml_core.testing.environments`` check an
implementation.
"""

from __future__ import annotations

import abc
import hashlib
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from clearml_core.environments.process import BuildLog
from clearml_core.environments.python import PythonInfo

if TYPE_CHECKING:
    from clearml_core.config import Config
    from clearml_core.controlplane import Task


@dataclass(frozen=True)
class BuildContext:
    """What a package manager may look at besides the task: configuration, interpreter, code, GPU."""

    config: Config
    python: PythonInfo
    code_dir: Path | None = None
    """The root of the task's code on this machine (None: not checked out, e.g. ``agent build``)."""
    working_dir: Path | None = None
    """Where the entry point runs (inside ``code_dir``)."""
    cuda_version: str | None = None
    """``"12.1"``, or None for CPU only (see :mod:`clearml_core.environments.cuda`)."""
    image: str = ""
    """The container image the environment is for ("" for the local machine)."""
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    """The agent's environment variables (installers run with these)."""
    scratch_dir: Path | None = None
    """A folder for temporary files of the build."""


@dataclass(frozen=True)
class PythonEnv:
    """A built environment: a folder with ``bin/python`` (``Scripts\\python.exe`` on Windows)."""

    path: Path

    @property
    def bin_dir(self) -> Path:
        return self.path / ("Scripts" if os.name == "nt" else "bin")

    @property
    def python(self) -> Path:
        return self.bin_dir / ("python.exe" if os.name == "nt" else "python")

    def site_packages(self) -> list[Path]:
        if os.name == "nt":
            return [self.path / "Lib" / "site-packages"]
        return sorted(self.path.glob("lib*/python*/site-packages"))

    def activation(self, environ: Mapping[str, str] | None = None) -> dict[str, str]:
        """The variables that put this environment first: ``VIRTUAL_ENV`` and ``PATH``."""
        base = os.environ if environ is None else environ
        return {
            "VIRTUAL_ENV": str(self.path),
            "PATH": f"{self.bin_dir}{os.pathsep}{base.get('PATH', os.defpath)}",
        }


NOT_IN_FINGERPRINT = {"fingerprint": False}
"""``field(metadata=NOT_IN_FINGERPRINT)``: a setting that does not change the built environment
(a download cache's path, the installer's location) and so stays out of the cache key."""


def canonical_json(value: Any) -> str:
    """Stable JSON of dataclasses, tuples, paths and plain values (the input of fingerprints).

    Dataclass fields marked with :data:`NOT_IN_FINGERPRINT` are left out.
    """

    def plain(item: Any) -> Any:
        if item is None or isinstance(item, (str, int, float, bool)):
            return item
        if is_dataclass(item) and not isinstance(item, type):
            return {
                f.name: plain(getattr(item, f.name))
                for f in fields(item)
                if f.metadata.get("fingerprint", True)
            }
        if isinstance(item, Mapping):
            return {str(k): plain(v) for k, v in item.items()}
        if isinstance(item, (list, tuple, set, frozenset)):
            items = [plain(v) for v in item]
            return sorted(items, key=repr) if isinstance(item, (set, frozenset)) else items
        if isinstance(item, Path):
            return str(item)
        raise TypeError(f"{type(item).__name__} cannot go into a fingerprint; use JSON-able values")

    return json.dumps(plain(value), sort_keys=True, separators=(",", ":"))


def fingerprint_of(requirements: Any, settings: Any) -> str:
    """The hash of a manager's requirements and settings (what :meth:`PackageManager.fingerprint` returns)."""
    payload = canonical_json({"requirements": requirements, "settings": settings})
    return hashlib.sha256(payload.encode()).hexdigest()


class PackageManager(abc.ABC):
    """Builds Python environments for tasks. Subclass it, set :attr:`name`, implement the steps.

    See the module documentation for the order of the calls and what each must do.
    """

    name: ClassVar[str] = ""

    def __init__(self, config: Config) -> None:
        self.config = config

    def detect(self, task: Task, repo_dir: Path | None) -> bool:
        """Whether this manager applies to ``task`` with its code at ``repo_dir`` (None: no code)."""
        return True

    @abc.abstractmethod
    def requirements(self, task: Task, context: BuildContext) -> Any:
        """What to install, as a frozen dataclass; falsy when there is nothing to install.

        It may carry ``uncacheable_reason`` (a string, empty when the environment may be shared).
        """

    @abc.abstractmethod
    def settings(self, context: BuildContext) -> Any:
        """How to install (indexes, versions of the tools, flags), as a frozen dataclass."""

    def resolve(self, requirements: Any, settings: Any, context: BuildContext, log: BuildLog | None) -> Any:
        """``requirements`` with what will be installed decided (a solver's solution); the
        default returns them as they are. See the module documentation."""
        return requirements

    def fingerprint(self, task: Task, context: BuildContext) -> str:
        """The manager's part of the cache key: resolved requirements and settings, hashed."""
        settings = self.settings(context)
        return fingerprint_of(
            self.resolve(self.requirements(task, context), settings, context, None), settings
        )

    @abc.abstractmethod
    def create(self, target: Path, python: PythonInfo, settings: Any, log: BuildLog) -> PythonEnv:
        """Create an empty environment at ``target`` (which does not exist) from ``python``."""

    @abc.abstractmethod
    def install(self, env: PythonEnv, requirements: Any, settings: Any, log: BuildLog) -> None:
        """Install ``requirements`` into ``env``; raise ``BuildFailed`` with the reason on failure."""

    def freeze(self, env: PythonEnv) -> list[str]:
        """The packages installed in ``env``, as sorted ``name==version`` / ``name @ url`` lines."""
        return freeze_environment(env)

    def describe(self, requirements: Any, settings: Any) -> dict[str, Any]:
        """A short, secret-free summary for the task record and ``agent build`` (override freely)."""
        return {}

    def activation(self, env: PythonEnv, environ: Mapping[str, str] | None = None) -> dict[str, str]:
        """The variables the task's process gets to use ``env`` (default: ``VIRTUAL_ENV``, ``PATH``)."""
        return env.activation(environ)

    def requirements_update(self, requirements: Any, settings: Any, frozen: list[str]) -> dict[str, Any]:
        """Fields of the task's ``requirements`` to rewrite after the build, besides ``frozen``
        (default: none); ``frozen`` is what :meth:`freeze` returned."""
        return {}


def freeze_environment(env: PythonEnv, *, skip: Callable[[Path], bool] | None = None) -> list[str]:
    """``pip freeze --all`` of ``env`` without starting its interpreter: reads its ``*.dist-info``.

    Only the ``Name``/``Version`` headers and ``direct_url.json`` are read (importlib.metadata
    would cost ~20 ms on first use, a tenth of a small cached install). ``skip(folder)`` leaves
    out the ``*.dist-info`` folders it returns True for (those another installer owns).
    """
    found: dict[str, str] = {}
    for site in env.site_packages():
        try:
            folders = sorted(p for p in site.iterdir() if p.name.endswith(".dist-info") and p.is_dir())
        except OSError:
            continue
        for folder in folders:
            if skip is not None and skip(folder):
                continue
            name, version = _name_and_version(folder / "METADATA")
            if not name:
                continue
            line = f"{name}=={version}"
            direct = _direct_reference(folder / "direct_url.json")
            if direct:
                line = f"{name} @ {direct}"
            found.setdefault(name.lower().replace("_", "-").replace(".", "-"), line)
    return [found[key] for key in sorted(found)]


def _name_and_version(metadata: Path) -> tuple[str, str]:
    name = version = ""
    try:
        with open(metadata, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if not line.strip():
                    break  # the headers end at the first blank line
                if line.startswith("Name:"):
                    name = line[5:].strip()
                elif line.startswith("Version:"):
                    version = line[8:].strip()
                if name and version:
                    break
    except OSError:
        return "", ""
    return name, version


def _direct_reference(path: Path) -> str:
    """``url`` of a ``direct_url.json`` (``vcs+url@commit`` for VCS installs); "" for editable installs."""
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ""
    url = info.get("url", "") if isinstance(info, dict) else ""
    if not url:
        return ""
    vcs = info.get("vcs_info")
    if isinstance(vcs, dict):
        return f"{vcs.get('vcs', 'git')}+{url}@{vcs.get('commit_id', '')}"
    if isinstance(info.get("dir_info"), dict) and info["dir_info"].get("editable"):
        return ""
    return str(url)
