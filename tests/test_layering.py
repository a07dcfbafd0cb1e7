"""The core's import graph has layers and no cycles (read with grimp, without importing anything).

* No import cycle among the core's modules. Imports under ``if TYPE_CHECKING:`` and imports inside
  functions count: they are dependencies too (a type names what a module needs to be understood,
  and a lazy import is only a deferred one), so a cycle through them is a cycle.
* The core never imports a plugin package: plugins depend on the core, and the core finds them
  through entry points only.
* The lower layers — environments, vcs, storage, runners, controlplane, config — never reach the
  agent or the CLI, directly or through another module.
* config never reaches the plugin registry or :mod:`clearml_core.settings`: it reads
  configuration over the defaults files its caller names (see :mod:`clearml_core.settings`).

A failure names the modules of each cycle or the chain of imports that breaks a rule.
"""

from __future__ import annotations

import importlib.metadata
from functools import cache
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[1]
CORE = "clearml_core"
LOWER_LAYERS = ("environments", "vcs", "storage", "runners", "controlplane", "config")
UPPER_LAYERS = ("agent", "cli")


@cache
def core_graph() -> grimp.ImportGraph:
    # cache_dir=None: nothing is written into the checkout
    return grimp.build_graph(CORE, include_external_packages=True, cache_dir=None)


def core_modules(graph: grimp.ImportGraph) -> set[str]:
    return {module for module in graph.modules if module == CORE or module.startswith(CORE + ".")}


def import_cycles(graph: grimp.ImportGraph, modules: set[str]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm, iterative)."""
    edges = {
        m: sorted(d for d in graph.find_modules_directly_imported_by(m) if d in modules) for m in modules
    }
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    for root in sorted(modules):
        if root in index:
            continue
        work = [(root, 0)]
        while work:
            node, position = work.pop()
            if position == 0:
                index[node] = low[node] = len(index)
                stack.append(node)
                on_stack.add(node)
            for offset, target in enumerate(edges[node][position:], start=position):
                if target not in index:
                    work.append((node, offset + 1))
                    work.append((target, 0))
                    break
                if target in on_stack:
                    low[node] = min(low[node], index[target])
            else:
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        components.append(sorted(component))
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
    return components


def describe(graph: grimp.ImportGraph, component: list[str]) -> str:
    members = set(component)
    lines = [f"{len(component)} modules import each other:"]
    for module in component:
        inside = sorted(d for d in graph.find_modules_directly_imported_by(module) if d in members)
        lines.append(f"  {module} -> {', '.join(inside)}")
    return "\n".join(lines)


def plugin_packages() -> set[str]:
    """Top-level packages of the plugins: this repository's, and every installed entry point's."""
    names = {path.parent.name for path in ROOT.glob("plugins/*/*/__init__.py") if path.parent.name != "tests"}
    for entry_point in importlib.metadata.entry_points(group="clearml_core.plugins"):
        names.add(entry_point.value.split(":")[0].split(".")[0])
    names.discard(CORE)
    return names


def chain(graph: grimp.ImportGraph, importer: str, imported: str) -> str:
    found = graph.find_shortest_chain(importer=importer, imported=imported, as_packages=True)
    return " -> ".join(found or ())


def test_the_cycle_finder_finds_a_cycle_grimp_reports():
    graph = grimp.ImportGraph()
    for module in ("pkg", "pkg.a", "pkg.b", "pkg.c", "pkg.d"):
        graph.add_module(module)
    graph.add_import(importer="pkg.a", imported="pkg.b")
    graph.add_import(importer="pkg.b", imported="pkg.c")
    graph.add_import(importer="pkg.c", imported="pkg.a")
    graph.add_import(importer="pkg.c", imported="pkg.d")
    assert import_cycles(graph, set(graph.modules)) == [["pkg.a", "pkg.b", "pkg.c"]]


def test_type_checking_imports_are_in_the_graph():
    # runners.base names Config only for its type hints: the graph must see that import
    graph = core_graph()
    assert graph.direct_import_exists(importer=f"{CORE}.runners.base", imported=f"{CORE}.config")


def test_no_import_cycle_among_core_modules():
    graph = core_graph()
    cycles = import_cycles(graph, core_modules(graph))
    assert not cycles, "\n".join(describe(graph, component) for component in cycles)


def test_the_core_never_imports_a_plugin():
    graph = core_graph()
    plugins = plugin_packages()
    assert "clearml_core_pkgmgr_pip" in plugins
    offending = sorted(
        f"{importer} imports {imported}"
        for importer in core_modules(graph)
        for imported in graph.find_modules_directly_imported_by(importer)
        if imported.split(".")[0] in plugins
    )
    assert not offending, "\n".join(offending)


@pytest.mark.parametrize("lower", LOWER_LAYERS)
def test_lower_layers_never_reach_the_agent_or_the_cli(lower):
    graph = core_graph()
    broken = [
        chain(graph, f"{CORE}.{lower}", f"{CORE}.{upper}")
        for upper in UPPER_LAYERS
        if graph.chain_exists(importer=f"{CORE}.{lower}", imported=f"{CORE}.{upper}", as_packages=True)
    ]
    assert not broken, "\n".join(broken)


@pytest.mark.parametrize("registry_side", ["plugins", "settings"])
def test_config_never_reaches_the_plugin_registry(registry_side):
    graph = core_graph()
    importer, imported = f"{CORE}.config", f"{CORE}.{registry_side}"
    assert not graph.chain_exists(importer=importer, imported=imported, as_packages=True), chain(
        graph, importer, imported
    )
