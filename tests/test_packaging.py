"""What the docs, the README, the scripts and the install hints tell users to install exists.

Every ``clearml-core[extra]`` they name is an extra of pyproject.toml, and every official plugin
distribution they name (``clearml-core-storage-…``, ``-pkgmgr-…``, ``-runner-…``,
``-controlplane-…``) is a package of this workspace. Third-party examples (``clearml-core-memo``)
use other names and are not checked.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")

ROOT = Path(__file__).resolve().parents[1]
_EXTRA = re.compile(r"clearml-core\[([^\]]*)\]")
_OFFICIAL = re.compile(
    r"(?<![\w-])clearml-core-(?:storage|pkgmgr|runner|controlplane)-[a-z0-9]+(?:-[a-z0-9]+)*"
)


def _extras() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return set(project["optional-dependencies"])


def _distributions() -> set[str]:
    return {
        tomllib.loads(path.read_text(encoding="utf-8"))["project"]["name"]
        for path in ROOT.glob("plugins/*/pyproject.toml")
    }


def _texts() -> list[Path]:
    """What users read: docs, READMEs, scripts, and the code that prints hints (tests excluded)."""
    files = [ROOT / "README.md", ROOT / "Makefile", *sorted((ROOT / "docs").glob("*.md"))]
    files += sorted((ROOT / "scripts").glob("*.sh")) + sorted((ROOT / "examples").rglob("*.md"))
    files += sorted((ROOT / "core" / "clearml_core").rglob("*.py"))
    for plugin in sorted((ROOT / "plugins").iterdir()):
        files += [path for path in plugin.rglob("*") if path.suffix in (".py", ".md", ".toml", ".conf")]
    return [path for path in files if path.is_file() and "tests" not in path.relative_to(ROOT).parts]


def _named_extras(text: str) -> set[str]:
    """The extras of each ``clearml-core[…]`` in ``text``; f-string templates (``{extra}``) are
    checked where they are filled in, at run time (below)."""
    named = {extra.strip() for match in _EXTRA.finditer(text) for extra in match.group(1).split(",")}
    return {extra for extra in named if "{" not in extra}


def test_every_extra_named_exists():
    extras = _extras()
    assert {"s3", "azure", "gs", "sftp", "all", "testing"} <= extras
    wrong = []
    for path in _texts():
        for extra in sorted(_named_extras(path.read_text(encoding="utf-8")) - extras):
            wrong.append(f"{path.relative_to(ROOT)}: clearml-core[{extra}] is not an extra of pyproject.toml")
    assert not wrong, "\n".join(wrong)


def test_every_official_plugin_named_exists():
    known = _distributions() | {"clearml-core"}
    wrong = []
    for path in _texts():
        for name in sorted(set(_OFFICIAL.findall(path.read_text(encoding="utf-8"))) - known):
            wrong.append(f"{path.relative_to(ROOT)}: {name} is not a distribution of this workspace")
    assert not wrong, "\n".join(wrong)


def test_the_hints_shown_at_run_time_name_existing_extras():
    from clearml_core.environments.builder import HINTS as MANAGER_HINTS
    from clearml_core.plugins import PluginRegistry
    from clearml_core.runners.base import HINTS as ENVIRONMENT_HINTS
    from clearml_core.storage.hints import OFFICIAL_BACKENDS, install_hint

    extras = _extras()
    shown = [install_hint(scheme) or "" for scheme in OFFICIAL_BACKENDS]
    shown += [spec.install_hint for spec in PluginRegistry().storage_backends()]
    shown += [*MANAGER_HINTS.values(), *ENVIRONMENT_HINTS.values()]
    for hint in shown:
        assert _named_extras(hint) <= extras, hint
