"""Small plugin distributions, made on the fly, for testing discovery, isolation and clashes.

:func:`install` writes each :class:`PluginDist` into a folder the way an installer would (the
import package plus a ``*.dist-info`` folder with ``METADATA`` and ``entry_points.txt``), so a
subprocess with that folder on ``PYTHONPATH`` sees a real installed distribution, as far as
importlib.metadata and stevedore are concerned. :meth:`PluginDist.write_project` writes the same
plugin as a buildable project (hatchling) for the tests that install real wheels.

The registry reads entry points through importlib.metadata, which looks at the folders on sys.path
afresh in each process; the tests run with a private HOME (the autouse ``clearml_home`` fixture),
which subprocesses inherit, so no tool's cache in the developer's home (stevedore keeps one under
``~/.cache/python-entrypoints``) can leak between tests.
"""

from __future__ import annotations

import re
import shutil
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

ENTRY_POINT_GROUP = "clearml_core.plugins"


@dataclass(frozen=True)
class PluginDist:
    """One distribution that installs one ``clearml_core.plugins`` entry point."""

    distribution: str
    entry_point: str
    package: str
    files: dict[str, str] = field(default_factory=dict)  # path inside the package -> text
    version: str = "1.0.0"
    entry_value: str | None = None  # what the entry point names; the package by default

    @property
    def target(self) -> str:
        return self.entry_value or self.package

    @property
    def dist_info_name(self) -> str:
        return f"{re.sub(r'[-_.]+', '_', self.distribution)}-{self.version}.dist-info"

    def install(self, site: Path) -> None:
        """Write the package and its ``*.dist-info`` into ``site``."""
        self._write_package(site)
        info = site / self.dist_info_name
        info.mkdir(parents=True)
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {self.distribution}\nVersion: {self.version}\n", encoding="utf-8"
        )
        (info / "entry_points.txt").write_text(
            f"[{ENTRY_POINT_GROUP}]\n{self.entry_point} = {self.target}\n", encoding="utf-8"
        )
        (info / "top_level.txt").write_text(f"{self.package}\n", encoding="utf-8")

    def uninstall(self, site: Path) -> None:
        """Remove what :meth:`install` wrote into ``site``, as ``pip uninstall`` would."""
        shutil.rmtree(site / self.dist_info_name)
        shutil.rmtree(site / self.package, ignore_errors=True)  # a missing_module() dist has none

    def write_project(self, root: Path) -> Path:
        """Write a buildable project (``uv build`` makes its wheel) into ``root``; returns ``root``."""
        root.mkdir(parents=True, exist_ok=True)
        self._write_package(root)
        (root / "pyproject.toml").write_text(
            textwrap.dedent(
                f"""\
                [project]
                name = "{self.distribution}"
                version = "{self.version}"
                dependencies = ["clearml-core"]

                [project.entry-points."{ENTRY_POINT_GROUP}"]
                {self.entry_point} = "{self.target}"

                [build-system]
                requires = ["hatchling"]
                build-backend = "hatchling.build"

                [tool.hatch.build.targets.wheel]
                packages = ["{self.package}"]
                """
            ),
            encoding="utf-8",
        )
        return root

    def _write_package(self, root: Path) -> None:
        for relative, text in self.files.items():
            path = root / self.package / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(text), encoding="utf-8")


def install(site: Path, *dists: PluginDist) -> dict[str, str]:
    """Install ``dists`` into ``site``; returns the environment a subprocess needs to see them."""
    site.mkdir(parents=True, exist_ok=True)
    for dist in dists:
        dist.install(site)
    return {"PYTHONPATH": str(site)}


# -- the kinds of plugin the tests use -------------------------------------------------------------

MEMO_SETTING = "from-the-memo-plugin"


def working() -> PluginDist:
    """A well-behaved plugin: storage backend ``memo``, package manager ``memo-pm``, config defaults.

    Its module imports nothing but clearml_core; its driver module (named lazily by the spec)
    imports fsspec and sqlite3, so importing it by accident shows up in ``sys.modules``.
    """
    return PluginDist(
        distribution="clearml-test-memo",
        entry_point="memo",
        package="clearml_test_memo",
        version="1.2.3",
        files={
            "__init__.py": """
                from pathlib import Path

                from clearml_core import PackageManagerSpec, StorageBackendSpec, hookimpl


                @hookimpl
                def clearml_storage_backends():
                    return [
                        StorageBackendSpec(
                            name="memo",
                            schemes=("memo",),
                            factory="clearml_test_memo.driver:MemoDriver",
                            install_hint="pip install clearml-test-memo",
                        )
                    ]


                @hookimpl
                def clearml_package_managers():
                    return [PackageManagerSpec(name="memo-pm", factory="clearml_test_memo.driver:MemoManager")]


                @hookimpl
                def clearml_config_defaults():
                    return [Path(__file__).with_name("defaults.conf")]
                """,
            "defaults.conf": f'memo {{\n    setting: "{MEMO_SETTING}"\n}}\n',
            "driver.py": """
                import sqlite3

                import fsspec


                class MemoDriver:
                    connect = staticmethod(sqlite3.connect)
                    filesystem = staticmethod(fsspec.filesystem)


                class MemoManager:
                    pass
                """,
        },
    )


def broken() -> PluginDist:
    """A plugin whose module raises at import."""
    return PluginDist(
        distribution="clearml-test-broken",
        entry_point="broken",
        package="clearml_test_broken",
        version="0.0.1",
        files={"__init__.py": 'raise RuntimeError("clearml-test-broken explodes at import")\n'},
    )


def missing_module() -> PluginDist:
    """A distribution whose entry point names a module that is not installed."""
    return PluginDist(
        distribution="clearml-test-missing",
        entry_point="missing",
        package="clearml_test_missing",
        version="0.0.2",
        entry_value="clearml_test_not_installed.plugin",
    )


def hook_raises() -> PluginDist:
    """A plugin that imports fine but whose registration hook raises."""
    return PluginDist(
        distribution="clearml-test-raising",
        entry_point="raising",
        package="clearml_test_raising",
        version="0.0.3",
        files={
            "__init__.py": """
                from clearml_core import hookimpl


                @hookimpl
                def clearml_package_managers():
                    raise ValueError("clearml-test-raising hook fails")
                """
        },
    )


def unknown_hook() -> PluginDist:
    """A plugin implementing a hook clearml-core does not have."""
    return PluginDist(
        distribution="clearml-test-bogus",
        entry_point="bogus",
        package="clearml_test_bogus",
        version="0.0.4",
        files={
            "__init__.py": """
                from clearml_core import hookimpl


                @hookimpl
                def clearml_bogus():
                    return []
                """
        },
    )


# What each clash kind registers: (hook, spec class, keyword arguments of plugin a, of plugin b).
_CLASHES: dict[str, tuple[str, str, str, str]] = {
    "backend": (
        "clearml_storage_backends",
        "StorageBackendSpec",
        'name="twin", schemes=("twin-a",)',
        'name="twin", schemes=("twin-b",)',
    ),
    "scheme": (
        "clearml_storage_backends",
        "StorageBackendSpec",
        'name="twin-a", schemes=("twin",)',
        'name="twin-b", schemes=("twin",)',
    ),
    "package_manager": (
        "clearml_package_managers",
        "PackageManagerSpec",
        'name="twin"',
        'name="twin"',
    ),
    "execution_environment": (
        "clearml_execution_environments",
        "ExecutionEnvSpec",
        'name="twin"',
        'name="twin"',
    ),
    "control_plane": (
        "clearml_control_planes",
        "ControlPlaneSpec",
        'name="twin-a", schemes=("twin",)',
        'name="twin-b", schemes=("twin",)',
    ),
}

CLASH_KINDS = tuple(_CLASHES)


def clashing(kind: str) -> tuple[PluginDist, PluginDist]:
    """Two plugins (distributions ``clearml-test-<kind>-a`` / ``-b``) claiming one name of ``kind``."""
    hook, spec, *arguments = _CLASHES[kind]
    pair = []
    for letter, args in zip("ab", arguments):
        package = f"clearml_test_{kind}_{letter}"
        source = f"""
            from clearml_core import {spec}, hookimpl


            @hookimpl
            def {hook}():
                return [{spec}({args}, factory="{package}.impl:Implementation")]
            """
        pair.append(
            PluginDist(
                distribution=f"clearml-test-{kind.replace('_', '-')}-{letter}",
                entry_point=f"{kind}_{letter}",
                package=package,
                files={"__init__.py": source},
            )
        )
    return pair[0], pair[1]


def same_entry_point() -> tuple[PluginDist, PluginDist]:
    """Two distributions installing one entry point name (``twin``), each with its own module."""
    return tuple(  # type: ignore[return-value]
        PluginDist(
            distribution=f"clearml-test-twin-{letter}",
            entry_point="twin",
            package=f"clearml_test_twin_{letter}",
            files={"__init__.py": "from clearml_core import hookimpl  # noqa: F401\n"},
        )
        for letter in "ab"
    )


def tiny_manager() -> PluginDist:
    """A package-manager plugin of a few lines (``tiny``: uv venv + uv pip install), as a third party
    would write it, for running the contract kit from a project outside this repository."""
    return PluginDist(
        distribution="clearml-tiny-pm",
        entry_point="tiny_pm",
        package="clearml_tiny_pm",
        version="0.1.0",
        files={
            "__init__.py": """
                from clearml_core import PackageManagerSpec, hookimpl


                @hookimpl
                def clearml_package_managers():
                    return [PackageManagerSpec(name="tiny", factory="clearml_tiny_pm.manager:TinyManager")]
                """,
            "manager.py": """
                import shutil
                from dataclasses import dataclass

                from clearml_core.environments import BuildFailed, PackageManager, PythonEnv


                @dataclass(frozen=True)
                class Lines:
                    lines: tuple = ()

                    def __bool__(self):
                        return bool(self.lines)


                @dataclass(frozen=True)
                class Settings:
                    installer: str = "uv"


                def _uv():
                    found = shutil.which("uv")
                    if found is None:
                        raise BuildFailed("uv is not on PATH")
                    return found


                class TinyManager(PackageManager):
                    name = "tiny"

                    def requirements(self, task, context):
                        return Lines(tuple(task.requirements.pip))

                    def settings(self, context):
                        return Settings()

                    def create(self, target, python, settings, log):
                        result = log.run([_uv(), "venv", "--quiet", "--python", python.executable, str(target)])
                        if not result.ok:
                            raise BuildFailed(result.error_summary())
                        return PythonEnv(target)

                    def install(self, env, requirements, settings, log):
                        result = log.run([_uv(), "pip", "install", "--python", str(env.python), *requirements.lines])
                        if not result.ok:
                            raise BuildFailed(result.error_summary())
                """,
        },
    )
