"""What a conda environment holds, read from its ``conda-meta`` folder: no conda needed.

Every conda installer (conda, mamba, micromamba, rattler) writes one JSON file per package into
``<prefix>/conda-meta``: name, version, build, channel, subdir and the files it put into the
prefix. Python packages installed later with pip or uv are the ``*.dist-info`` folders of the
site-packages that no conda package owns.

Two places read it: ``task create`` with ``sdk.development.detect_with_conda_freeze`` records the
creating environment (``CONDA_PREFIX``) as the task's conda requirements, and the conda package
manager freezes what it built. Both write a package pinned exactly, channel included, in
conda's canonical match-spec form:
``numpy ==1.26.4 py311h64a7726_0[channel=https://conda.anaconda.org/conda-forge]``.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from clearml_core.environments.protocol import PythonEnv, freeze_environment

META_FOLDER = "conda-meta"
_PINNED_CHANNEL = re.compile(r"\[channel=([^\],]+)")


@dataclass(frozen=True)
class CondaRecord:
    """One package of a conda environment."""

    name: str
    version: str
    build: str
    channel: str
    """The channel's URL (``https://conda.anaconda.org/conda-forge``), or its name where the
    installer recorded only that; "" when unknown (a package installed from a file)."""
    subdir: str = ""

    def pinned(self) -> str:
        """The exact match spec, in conda's canonical form: ``name ==version build[channel=…]``."""
        spec = f"{self.name} =={self.version} {self.build}"
        return f"{spec}[channel={self.channel}]" if self.channel else spec


def is_conda_prefix(path: str | Path) -> bool:
    """Whether ``path`` is a conda environment (it has a ``conda-meta`` folder)."""
    return (Path(path) / META_FOLDER).is_dir()


def _channel(raw: object, subdir: str) -> str:
    """conda records ``https://…/conda-forge/linux-64`` (older conda) or ``…/conda-forge/``; the
    channel is the URL without its subdir and trailing slash, and without credentials."""
    text = public_channel(str(raw or "").strip().rstrip("/"))
    if subdir and text.endswith("/" + subdir):
        text = text[: -len(subdir) - 1]
    return text


_USERINFO = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s]*@")
_TOKEN = re.compile(r"/t/[^/]+(?=/)")


def public_channel(url: str) -> str:
    """A channel URL without what authenticates it: ``https://user:pass@host/x`` → ``https://host/x``,
    anaconda.org's ``…/t/<token>/channel`` → ``…/channel`` (what conda records too)."""
    return _TOKEN.sub("", _USERINFO.sub(r"\1", url), count=1)


def read_conda_meta(prefix: str | Path) -> tuple[list[CondaRecord], set[str]]:
    """The packages of the conda environment at ``prefix``, sorted by name, and the
    ``site-packages/*.dist-info`` folders they own (relative to the prefix)."""
    folder = Path(prefix) / META_FOLDER
    records: dict[str, CondaRecord] = {}
    owned: set[str] = set()
    try:
        files = sorted(entry for entry in os.listdir(folder) if entry.endswith(".json"))
    except OSError:
        return [], owned
    for entry in files:
        try:
            data = json.loads((folder / entry).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if not isinstance(data, dict) or not data.get("name"):
            continue
        subdir = str(data.get("subdir") or "")
        record = CondaRecord(
            name=str(data["name"]),
            version=str(data.get("version", "")),
            build=str(data.get("build", data.get("build_string", ""))),
            channel=_channel(data.get("channel"), subdir),
            subdir=subdir,
        )
        records[record.name] = record
        for path in data.get("files") or ():
            parts = str(path).split("/")
            for index, part in enumerate(parts[:-1]):
                if part.endswith(".dist-info"):
                    owned.add("/".join(parts[: index + 1]))
                    break
    return [records[name] for name in sorted(records, key=str.lower)], owned


def pip_packages(prefix: str | Path, owned: set[str]) -> list[str]:
    """``name==version`` lines of the Python packages in ``prefix`` that no conda package owns
    (installed by pip or uv)."""
    root = Path(prefix)
    return freeze_environment(
        PythonEnv(root), skip=lambda folder: folder.relative_to(root).as_posix() in owned
    )


def environment_yaml(
    specs: list[str], pip_lines: list[str], *, channels: list[str] | None = None, comment: str = ""
) -> str:
    """An ``environment.yml`` of these conda match specs, ``channels`` (in priority order) and pip
    lines; ``channels`` defaults to those the specs name (``[channel=…]``), in their order.

    Written by hand (JSON strings are YAML scalars) so that the core needs no YAML library.
    """
    if channels is None:
        channels = list(dict.fromkeys(m.group(1) for m in map(_PINNED_CHANNEL.search, specs) if m))
    lines = [f"# {comment}"] if comment else []
    if channels:
        lines.append("channels:")
        lines += [f"  - {json.dumps(channel)}" for channel in channels]
    if not specs and not pip_lines:
        return "\n".join([*lines, "dependencies: []"]) + "\n"
    lines.append("dependencies:")
    lines += [f"  - {json.dumps(spec)}" for spec in specs]
    if pip_lines:
        lines.append("  - pip:")
        lines += [f"      - {json.dumps(line)}" for line in pip_lines]
    return "\n".join(lines) + "\n"


def describe_environment(prefix: str | Path, *, comment: str = "") -> str:
    """The ``environment.yml`` text of the conda environment at ``prefix`` (see :func:`environment_yaml`)."""
    records, owned = read_conda_meta(prefix)
    return environment_yaml(
        [record.pinned() for record in records], pip_packages(prefix, owned), comment=comment
    )


__all__ = [
    "META_FOLDER",
    "CondaRecord",
    "describe_environment",
    "environment_yaml",
    "is_conda_prefix",
    "pip_packages",
    "public_channel",
    "read_conda_meta",
]
