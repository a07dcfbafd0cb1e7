"""What a task asks a conda environment for, in ClearML's order of sources.

1. The task's conda requirements (``requirements.conda``): an ``environment.yml`` text (what
   ``task create`` records with ``sdk.development.detect_with_conda_freeze``, or one written by
   hand), or the conda list ClearML's SDK records (``numpy == 1.26.4`` lines, one per package).
2. Else the ``environment.yml`` (or ``.yaml``) of the task's code: in its working dir, else at its
   root. Its ``channels`` come before ``agent.package_manager.conda_channels``; ``nodefaults``
   drops ``defaults`` from them.
3. Else nothing conda-specific: the environment is a conda Python of the requested version, and
   the task's pip requirements go into it with pip.

In every case the task's pip requirements (its record, else its ``requirements.txt``) whose names
the conda side does not already name are installed with pip after the conda packages, after an
``environment.yml``'s own ``pip:`` section (ClearML's rule: what the conda list names comes from
conda). A ``torch`` of ClearML's conda list is conda's ``pytorch``.

The Python is the one the conda side names (``python=3.10``), else ``agent.default_python``,
else the version of the interpreter the agent builds from (``agent.python_binary`` or its own).
Nothing here imports rattler: reading the inputs is part of every cache lookup.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from clearml_core.environments import RequirementsError, RequirementSet, canonical_name
from clearml_core.environments.requirements import parse_requirement_lines

ENVIRONMENT_FILES = ("environment.yml", "environment.yaml")
NO_DEFAULTS = "nodefaults"
CLEARML_RENAMES = {"torch": "pytorch"}
"""ClearML's SDK records conda's ``pytorch`` as ``torch`` in a conda list."""
_NAME = re.compile(r"^\s*(?:[^\s\[]*::)?([A-Za-z0-9_][A-Za-z0-9_.\-]*)")
_SPACED_OPERATOR = re.compile(r"^(\S+)\s+(==|>=|<=|!=|~=|=|<|>)\s*(\S.*)$")


@dataclass(frozen=True)
class CondaRequest:
    """The conda side of what a task asks for (before any solving)."""

    specs: tuple[str, ...] = ()
    """Match specs (``numpy >=1.26``), without the Python the request may not name."""
    channels: tuple[str, ...] = ()
    """Channels the request names itself (an environment.yml's), before the configured ones."""
    no_defaults: bool = False
    pip: RequirementSet = field(default_factory=RequirementSet)
    """An environment.yml's ``pip:`` section."""
    variables: tuple[tuple[str, str], ...] = ()
    """An environment.yml's ``variables:`` (set when the environment is activated)."""
    source: str = ""


def spec_name(spec: str) -> str:
    """The package name of a match spec (``conda-forge::NumPy>=1`` → ``numpy``), "" when it has none."""
    match = _NAME.match(spec)
    return match.group(1).lower() if match else ""


def find_environment_file(code_dir: Path | None, working_dir: Path | None) -> Path | None:
    """``environment.yml`` / ``.yaml`` of the working dir, else of the code's root."""
    for folder in dict.fromkeys(f for f in (working_dir, code_dir) if f is not None):
        for name in ENVIRONMENT_FILES:
            candidate = folder / name
            if candidate.is_file():
                return candidate
    return None


def read_environment_file(path: Path, *, code_dir: Path | None) -> CondaRequest:
    """An ``environment.yml`` of the task's code; its pip paths are relative to the file."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as error:
        raise RequirementsError(f"cannot read {path}: {error.strerror or error}") from None
    label = _relative(path, code_dir)
    return parse_conda_text(text, what=label, base_dir=path.parent, code_dir=code_dir, source=label)


def parse_conda_text(
    text: str, *, what: str, base_dir: Path | None, code_dir: Path | None, source: str
) -> CondaRequest:
    """An environment.yml text, or a conda list (one package per line); ``what`` names it in errors."""
    import yaml

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        where = getattr(error, "problem_mark", None)
        line = f" (line {where.line + 1})" if where is not None else ""
        problem = getattr(error, "problem", None) or type(error).__name__
        raise RequirementsError(
            f"{what}: not valid YAML{line}: {problem}; fix it, or write one conda package per line"
        ) from None
    if isinstance(data, dict):
        return _environment(data, what=what, base_dir=base_dir, code_dir=code_dir, source=source)
    return CondaRequest(specs=tuple(_list_specs(text)), source=source)


def _environment(
    data: dict[str, Any], *, what: str, base_dir: Path | None, code_dir: Path | None, source: str
) -> CondaRequest:
    dependencies = data.get("dependencies") or []
    channels = data.get("channels") or []
    variables = data.get("variables") or {}
    if not isinstance(dependencies, list):
        raise RequirementsError(f"{what}: 'dependencies' must be a list of conda packages")
    if not isinstance(channels, list) or not all(isinstance(c, str) and c.strip() for c in channels):
        raise RequirementsError(f"{what}: 'channels' must be a list of channel names or URLs")
    if not isinstance(variables, dict):
        raise RequirementsError(f"{what}: 'variables' must be a mapping of names to values")
    specs: list[str] = []
    pip_lines: list[str] = []
    for entry in dependencies:
        if isinstance(entry, dict) and set(entry) == {"pip"}:
            lines = entry["pip"] or []
            if not isinstance(lines, list) or not all(isinstance(line, str) for line in lines):
                raise RequirementsError(f"{what}: the 'pip' section must be a list of requirement lines")
            pip_lines += lines
        elif isinstance(entry, (str, int, float)) and str(entry).strip():
            specs.append(str(entry).strip())
        else:
            raise RequirementsError(
                f"{what}: {entry!r} in 'dependencies' is neither a conda package nor a 'pip:' section"
            )
    names = [c.strip() for c in channels]
    pip = (
        parse_requirement_lines(pip_lines, base_dir=base_dir, source=source, code_dir=code_dir)
        if pip_lines
        else RequirementSet()
    )
    return CondaRequest(
        specs=tuple(specs),
        channels=tuple(c for c in names if c != NO_DEFAULTS),
        no_defaults=NO_DEFAULTS in names,
        pip=pip,
        variables=tuple(sorted((str(k), str(v)) for k, v in variables.items())),
        source=source,
    )


def _list_specs(text: str) -> list[str]:
    """ClearML's conda list: ``name == version`` (or any match spec) per line, ``#`` comments."""
    specs: list[str] = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line or line.startswith("@"):
            continue
        spaced = _SPACED_OPERATOR.match(line)
        if spaced:  # "numpy == 1.26.4" is one spec, not a name and a version
            line = f"{spaced.group(1)}{spaced.group(2)}{spaced.group(3).replace(' ', '')}"
        name = spec_name(line)
        if name in CLEARML_RENAMES:
            line = CLEARML_RENAMES[name] + line[line.lower().index(name) + len(name) :]
        specs.append(line)
    return specs


def merge_pip(first: RequirementSet, more: RequirementSet, *, skip: set[str]) -> RequirementSet:
    """``first``'s lines, then those of ``more`` whose names are neither in ``first`` nor in ``skip``
    (canonical names); options of both are kept."""
    taken = {line.name for line in first.lines if line.name} | skip
    added = [line for line in more.lines if line.kind == "option" or not (line.name and line.name in taken)]
    if not added:
        return first
    sources = [s for s in (first.source, more.source) if s]
    digests = dict(first.digests)
    digests.update(more.digests)
    return RequirementSet(
        lines=(*first.lines, *added),
        source=" + ".join(dict.fromkeys(sources)),
        digests=tuple(sorted(digests.items())),
        uncacheable_reason=first.uncacheable_reason or more.uncacheable_reason,
    )


def conda_names(specs: tuple[str, ...]) -> set[str]:
    """The canonical (PEP 503) names of the conda packages ``specs`` name, ``pytorch`` also as ``torch``."""
    names = {canonical_name(spec_name(spec)) for spec in specs if spec_name(spec)}
    names |= {pypi for pypi, conda in CLEARML_RENAMES.items() if conda in names}
    return names


def _relative(path: Path, root: Path | None) -> str:
    if root is not None:
        try:
            return str(path.relative_to(root))
        except ValueError:
            pass
    return str(path)
