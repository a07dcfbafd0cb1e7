"""A conda prefix as a task uses it: activated, frozen, or taken as it is.

Activation is what ``conda activate`` does for a process: ``CONDA_PREFIX`` and ``PATH``, the
variables of the environment (``conda-meta/state``, from an environment.yml's ``variables:``) and
what the packages' ``etc/conda/activate.d/*.sh`` scripts export (run once per task with bash, only
when there are any: a CUDA toolkit sets ``CUDA_HOME`` that way).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path

from clearml_core.environments.conda_meta import META_FOLDER, pip_packages, read_conda_meta

STATE_FILE = "state"
"""``conda-meta/state``: conda's record of an environment's variables (``conda env config vars``)."""
ACTIVATE_SCRIPTS = Path("etc") / "conda" / "activate.d"
ACTIVATION_TIMEOUT_SEC = 60


def write_variables(prefix: Path, variables: tuple[tuple[str, str], ...]) -> None:
    """Record the environment's variables where conda keeps them."""
    if not variables:
        return
    state = prefix / META_FOLDER / STATE_FILE
    try:
        data = json.loads(state.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            data = {}
    except (OSError, ValueError):
        data = {}
    data["env_vars"] = {**data.get("env_vars", {}), **dict(variables)}
    state.write_text(json.dumps(data, indent=2), encoding="utf-8")


def read_variables(prefix: Path) -> dict[str, str]:
    try:
        data = json.loads((prefix / META_FOLDER / STATE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    found = data.get("env_vars") if isinstance(data, dict) else None
    return {str(k): str(v) for k, v in found.items()} if isinstance(found, dict) else {}


def activation(prefix: Path, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The variables that make ``prefix`` the active conda environment of a process.

    ``VIRTUAL_ENV`` is set empty: a virtual environment the agent itself runs in must not become
    the task's (uv would install into it).
    """
    base = dict(os.environ if environ is None else environ)
    bin_dir = prefix / "bin"
    values = {
        "CONDA_PREFIX": str(prefix),
        "CONDA_DEFAULT_ENV": str(prefix),
        "CONDA_SHLVL": "1",
        "VIRTUAL_ENV": "",
        "PATH": f"{bin_dir}{os.pathsep}{base.get('PATH', os.defpath)}",
    }
    values.update(read_variables(prefix))
    values.update(_activate_scripts(prefix, {**base, **values}))
    return values


def _activate_scripts(prefix: Path, environ: dict[str, str]) -> dict[str, str]:
    """What the prefix's ``activate.d/*.sh`` scripts set (nothing when it has none or bash is missing)."""
    folder = prefix / ACTIVATE_SCRIPTS
    try:
        scripts = sorted(p for p in folder.iterdir() if p.suffix == ".sh" and p.is_file())
    except OSError:
        return {}
    bash = shutil.which("bash", path=environ.get("PATH"))
    if not scripts or bash is None:
        return {}
    program = "".join(f'. "{script}" >/dev/null 2>&1 || true\n' for script in scripts) + "env -0\n"
    try:
        done = subprocess.run(
            [bash, "--noprofile", "--norc", "-c", program],
            env=environ,
            capture_output=True,
            timeout=ACTIVATION_TIMEOUT_SEC,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return {}
    after: dict[str, str] = {}
    for item in done.stdout.split(b"\0"):
        name, sep, value = item.decode("utf-8", "replace").partition("=")
        if sep and name and not name.startswith("BASH") and name not in ("_", "SHLVL", "PWD", "OLDPWD"):
            after[name] = value
    return {name: value for name, value in after.items() if environ.get(name) != value}


def freeze(prefix: Path) -> list[str]:
    """The environment's packages, sorted by name: conda's pinned exactly with their channel
    (``numpy ==1.26.4 py311h_0[channel=…]``), then pip's (``requests==2.31.0``) where they are
    not conda's."""
    records, owned = read_conda_meta(prefix)
    lines = {record.name.lower(): record.pinned() for record in records}
    for line in pip_packages(prefix, owned):
        key = line.split("==", 1)[0].split(" @ ", 1)[0].strip().lower()
        lines.setdefault(key, line)
    return [lines[key] for key in sorted(lines)]


def base_prefix(environ: Mapping[str, str], binary: str | None) -> Path | None:
    """The base environment of the conda installation this machine uses: that of ``CONDA_EXE`` /
    ``CONDA_PYTHON_EXE`` (set by an activated conda), else ``MAMBA_ROOT_PREFIX`` (micromamba), else
    the prefix holding ``binary``; None when none of them is a conda environment."""
    candidates: list[Path] = []
    for name in ("CONDA_EXE", "CONDA_PYTHON_EXE"):
        if environ.get(name):
            candidates.append(Path(environ[name]).parent.parent)
    if environ.get("MAMBA_ROOT_PREFIX"):
        candidates.append(Path(environ["MAMBA_ROOT_PREFIX"]))
    if binary:
        candidates.append(Path(binary).resolve().parent.parent)
    for candidate in candidates:
        if (candidate / META_FOLDER).is_dir():
            return candidate.absolute()
    return None
