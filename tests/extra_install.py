"""A fresh virtual environment with ``clearml-core[EXTRA]`` installed from this workspace's wheels,
as a user installs it (``pip install --find-links dist 'clearml-core[EXTRA]'``): for the install
tests of the plugin distributions."""

from __future__ import annotations

import json
import os
import subprocess
import venv
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(*command: str | Path, env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(part) for part in command], capture_output=True, text=True, timeout=timeout, env=env, check=False
    )


@dataclass(frozen=True)
class Installed:
    """The environment: its ``clearml-core`` command, the variables to run it with, its packages."""

    clearml_core: Path
    environ: dict[str, str]
    packages: set[str]

    def plugin(self, name: str) -> dict[str, str]:
        """``clearml-core plugins list --json``'s entry of the plugin ``name``."""
        listed = run(self.clearml_core, "plugins", "list", "--json", env=self.environ, timeout=120)
        assert listed.returncode == 0, listed.stdout + listed.stderr
        return {p["name"]: p for p in json.loads(listed.stdout)}[name]


def install_extra(folder: Path, extra: str, wheel: str) -> Installed:
    """Build every wheel into ``folder/dist`` (``wheel`` — a glob — must be among them) and install
    ``clearml-core[extra]`` from there into ``folder/venv``."""
    dist = folder / "dist"
    built = run("bash", ROOT / "scripts" / "build-dist.sh", dist, env=dict(os.environ))
    assert built.returncode == 0, built.stdout + built.stderr
    assert list(dist.glob(wheel)), sorted(p.name for p in dist.iterdir())

    env_dir = folder / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHONPATH", "UV_"))}
    pip = (env_dir / "bin" / "python", "-m", "pip", "--disable-pip-version-check")
    installed = run(*pip, "install", "--quiet", "--find-links", dist, f"clearml-core[{extra}]", env=environ)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    packages = run(*pip, "list", "--format=json", env=environ, timeout=120)
    names = {p["name"].lower() for p in json.loads(packages.stdout)}
    return Installed(env_dir / "bin" / "clearml-core", environ, names)
