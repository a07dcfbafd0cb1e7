"""Every clearml_core name the docs and the examples use is public: exported, documented, listed.

The docs (README.md, docs/*.md, the plugins' and examples' READMEs) and the example plugin tell
plugin authors what to import and subclass. Each such name must be in its module's ``__all__``,
have a docstring (a class's or function's own, or an attribute docstring under a constant), and
appear in the reference of public names at the end of docs/plugins.md. Names are found:

* in ``from clearml_core… import …`` lines of the docs' Python blocks and of examples/**/*.py;
* as dotted references in inline code (``clearml_core.environments.PackageManager``);
* as class-like names in inline code (``BuildContext``) that some clearml_core module defines.

Upper-case words in inline code (``PATH``, ``CUDA_VISIBLE_DEVICES``) are not taken for Python
names: a constant is referred to with its module (``clearml_core.environments.NOT_IN_FINGERPRINT``).
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
import re
import textwrap
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import ModuleType

import clearml_core

ROOT = Path(__file__).resolve().parents[1]
DOCS = [
    ROOT / "README.md",
    *sorted((ROOT / "docs").glob("*.md")),
    *sorted(ROOT.glob("plugins/*/README.md")),
    *sorted((ROOT / "examples").rglob("*.md")),
]
EXAMPLE_CODE = sorted((ROOT / "examples").rglob("*.py"))
REFERENCE = ROOT / "docs" / "plugins.md"
REFERENCE_HEADING = "## Public names"

_PYTHON_BLOCK = re.compile(r"^( *)```python\n(.*?)^\1```", re.S | re.M)  # fences may be indented (lists)
_ANY_BLOCK = re.compile(r"^( *)```.*?^\1```", re.S | re.M)
_INLINE = re.compile(r"(?<!`)`([^`\n]+)`(?!`)")
_DOTTED = re.compile(r"(?<![\w.])(clearml_core(?:\.[A-Za-z_]\w*)+)(?::([A-Za-z_][\w.]*))?")
# A class-like word, but not a word of a header name (Cache-Control).
_CLASS_LIKE = re.compile(r"(?<![\w.-])([A-Z][a-z][A-Za-z0-9]*)\b(?!-)")


@dataclass(frozen=True)
class Use:
    """One clearml_core name used by a doc or an example, and where."""

    module: str  # "" for a bare name: some module of the reference must list it
    name: str  # "" when the module itself is meant
    where: str


def _relative(path: Path) -> str:
    return str(path.relative_to(ROOT))


def _imports(tree: ast.AST, where: str) -> list[Use]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "clearml_core":
            found += [Use(node.module, alias.name, where) for alias in node.names]
        elif isinstance(node, ast.Import):
            found += [Use(a.name, "", where) for a in node.names if a.name.split(".")[0] == "clearml_core"]
    return found


def _split_dotted(dotted: str, attribute: str | None) -> tuple[str, str]:
    """(module, name) of ``clearml_core.a.b.Name``: the longest prefix that imports is the module."""
    if attribute:
        return dotted, attribute.split(".")[0]
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        module = ".".join(parts[:cut])
        try:
            importlib.import_module(module)
        except ImportError:
            continue
        return module, parts[cut] if cut < len(parts) else ""
    raise AssertionError(f"{dotted}: no part of it is a module")


@cache
def _defined_names() -> dict[str, list[str]]:
    """Public top-level names of every clearml_core module -> the modules that define them."""
    defined: dict[str, list[str]] = {}
    for info in pkgutil.walk_packages(clearml_core.__path__, "clearml_core."):
        module = importlib.import_module(info.name)
        tree = ast.parse(Path(str(module.__file__)).read_text(encoding="utf-8"))
        for node in tree.body:
            for name in _assigned(node):
                if not name.startswith("_"):
                    defined.setdefault(name, []).append(info.name)
    return defined


def _assigned(node: ast.stmt) -> list[str]:
    if isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
        return [node.name]
    if isinstance(node, ast.Assign):
        return [target.id for target in node.targets if isinstance(target, ast.Name)]
    if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
        return [node.target.id]
    return []


def documented_uses() -> list[Use]:
    uses: list[Use] = []
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        where = _relative(doc)
        for _indent, block in _PYTHON_BLOCK.findall(text):
            uses += _imports(ast.parse(textwrap.dedent(block)), where)
        prose = _ANY_BLOCK.sub("", text)
        for span in _INLINE.findall(prose):
            for dotted, attribute in _DOTTED.findall(span):
                module, name = _split_dotted(dotted, attribute or None)
                uses.append(Use(module, name, where))
            for name in _CLASS_LIKE.findall(span):
                if name in _defined_names():
                    uses.append(Use("", name, where))  # whichever public module exports it
    for path in EXAMPLE_CODE:
        uses += _imports(ast.parse(path.read_text(encoding="utf-8")), _relative(path))
    return uses


@cache
def public_reference() -> dict[str, set[str]]:
    """The table under "Public names" in docs/plugins.md: module -> names."""
    text = REFERENCE.read_text(encoding="utf-8")
    assert REFERENCE_HEADING in text, f"{_relative(REFERENCE)} has no {REFERENCE_HEADING!r} section"
    section = text.split(REFERENCE_HEADING, 1)[1].split("\n## ", 1)[0]
    table: dict[str, set[str]] = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) != 2 or not cells[0].startswith("`clearml_core"):
            continue
        module = cells[0].strip("`")
        table.setdefault(module, set()).update(re.findall(r"`([A-Za-z_]\w*)`", cells[1]))
    assert table, f"the {REFERENCE_HEADING!r} section of {_relative(REFERENCE)} lists no module"
    return table


def _docstring(module_name: str, name: str, seen: frozenset[str] = frozenset()) -> str | None:
    """The docstring of ``name`` where ``module_name`` defines it (following its imports)."""
    module = importlib.import_module(module_name)
    tree = ast.parse(Path(str(module.__file__)).read_text(encoding="utf-8"))
    for index, node in enumerate(tree.body):
        if name not in _assigned(node):
            continue
        if isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            return ast.get_docstring(node)
        following = tree.body[index + 1] if index + 1 < len(tree.body) else None
        if (
            isinstance(following, ast.Expr)
            and isinstance(following.value, ast.Constant)
            and isinstance(following.value.value, str)
        ):
            return following.value.value
        return None
    for node in ast.walk(tree):  # re-exported: follow the import (lazy ones under TYPE_CHECKING too)
        if isinstance(node, ast.ImportFrom) and node.module and node.module not in seen:
            if any((alias.asname or alias.name) == name for alias in node.names):
                return _docstring(node.module, name, seen | {module_name})
    return None


def _module(name: str) -> ModuleType:
    return importlib.import_module(name)


def test_the_docs_and_examples_use_clearml_core_names():
    uses = documented_uses()
    assert any(use.where.startswith("examples/") for use in uses)
    assert (
        Use(
            "clearml_core.storage.driver",
            "write_atomically",
            "examples/storage_plugin/clearml_dirstore/driver.py",
        )
        in uses
    )


def test_every_name_the_docs_and_examples_use_is_public():
    reference = public_reference()
    problems = []
    for use in documented_uses():
        if not use.module:
            if not any(use.name in names for names in reference.values()):
                problems.append(f"{use.where}: {use.name} is not listed in docs/plugins.md, Public names")
            continue
        module = _module(use.module)
        if not use.name or isinstance(getattr(module, use.name, None), ModuleType):
            continue  # a module (or a submodule imported from its package): it imports, that is all
        if use.name not in getattr(module, "__all__", ()):
            problems.append(f"{use.where}: {use.module}.{use.name} is not in {use.module}.__all__")
        if use.name not in reference.get(use.module, set()):
            problems.append(
                f"{use.where}: {use.module}.{use.name} is not listed in docs/plugins.md, Public names"
            )
    assert not problems, "\n".join(sorted(set(problems)))


def test_every_listed_name_is_exported_and_documented():
    problems = []
    for module_name, names in sorted(public_reference().items()):
        module = _module(module_name)
        for name in sorted(names):
            if not hasattr(module, name):
                problems.append(f"{module_name} has no {name}")
                continue
            if name not in getattr(module, "__all__", ()):
                problems.append(f"{name} is not in {module_name}.__all__")
            if not (_docstring(module_name, name) or "").strip():
                problems.append(f"{module_name}.{name} has no docstring")
    assert not problems, "\n".join(problems)
