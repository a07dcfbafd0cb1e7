"""Every hook is documented: a docstring with a working ``Example::`` and a section in docs/plugins.md.

Adding a hook without both fails here, as datasette's and llm's documentation tests do.
"""

from __future__ import annotations

import ast
import inspect
import re
import textwrap
import types
from pathlib import Path

import pytest

from clearml_core import hookspecs
from clearml_core.plugins import PluginRegistry

DOCS = Path(__file__).resolve().parents[1] / "docs" / "plugins.md"
SPEC_MARKER = f"{hookspecs.PROJECT_NAME}_spec"


def _hooks() -> dict[str, types.FunctionType]:
    return {
        name: function
        for name, function in inspect.getmembers(hookspecs, inspect.isfunction)
        if hasattr(function, SPEC_MARKER)
    }


HOOKS = _hooks()


def example_of(docstring: str) -> str | None:
    """The dedented literal block that follows ``Example::``, or None when there is none."""
    lines = inspect.cleandoc(docstring).splitlines()
    for index, line in enumerate(lines):
        if line.rstrip().endswith("Example::"):
            indent = len(line) - len(line.lstrip())
            block = []
            for following in lines[index + 1 :]:
                if following.strip() and len(following) - len(following.lstrip()) <= indent:
                    break
                block.append(following)
            code = textwrap.dedent("\n".join(block)).strip("\n")
            return code or None
    return None


def _doc_sections() -> set[str]:
    return set(re.findall(r"^### (clearml_\w+)\s*$", DOCS.read_text(encoding="utf-8"), flags=re.MULTILINE))


def test_the_hooks_are_found():
    assert "clearml_storage_backends" in HOOKS
    assert all(name.startswith("clearml_") for name in HOOKS)


@pytest.mark.parametrize("name", sorted(HOOKS))
def test_hook_has_a_docstring_with_an_example_that_compiles(name):
    docstring = HOOKS[name].__doc__
    assert docstring, (
        f"{name} has no docstring; say when it is called, what it returns, and show an Example::"
    )
    code = example_of(docstring)
    assert code, f"the docstring of {name} has no 'Example::' block"
    try:
        compile(code, f"<example of {name}>", "exec")
    except SyntaxError as error:
        pytest.fail(f"the example of {name} does not compile: {error}")
    defined = {node.name for node in ast.parse(code).body if isinstance(node, ast.FunctionDef)}
    assert name in defined, f"the example of {name} should implement {name}, it defines {sorted(defined)}"


@pytest.mark.parametrize("name", sorted(HOOKS))
def test_hook_example_is_a_working_plugin(name, tmp_path):
    """Run the example as a plugin module: its specs must validate and the registry must accept it."""
    code = example_of(HOOKS[name].__doc__ or "")
    assert code
    module = types.ModuleType(f"example_{name}")
    module.__file__ = str(tmp_path / "example_plugin.py")
    (tmp_path / "defaults.conf").write_text("example.setting: 1\n")  # what a defaults example ships
    exec(compile(code, f"<example of {name}>", "exec"), module.__dict__)

    registry = PluginRegistry(discover=False)
    registry.register(module, "example", "example-plugin", "1.0")
    info = {info.name: info for info in registry.plugins()}["example"]
    assert info.status == "loaded", info.error
    assert info.provides, f"the example of {name} registers nothing"


@pytest.mark.parametrize("name", sorted(HOOKS))
def test_hook_has_a_section_in_the_plugin_docs(name):
    assert name in _doc_sections(), f"docs/plugins.md has no section '### {name}'"


def test_plugin_docs_document_no_hook_that_does_not_exist():
    stale = _doc_sections() - set(HOOKS)
    assert not stale, f"docs/plugins.md documents hooks clearml_core.hookspecs does not have: {sorted(stale)}"


def test_example_of_finds_only_the_indented_block():
    docstring = """Summary.

    Example::

        x = 1
        if x:
            y = 2

    Not part of it.
    """
    assert example_of(docstring) == "x = 1\nif x:\n    y = 2"
    assert example_of("No example here.") is None
    assert example_of("Empty.\n\nExample::\n\nNothing indented.") is None
