"""Every key of the shipped defaults is read by the code; the ClearML keys that nothing reads live in
``config/clearml_keys.conf`` instead, each covered by docs/configuration.md.

The scan is deliberately simple. For each module of the core and of every plugin it collects the
string constants (docstrings left out) and the literal fragments of f-strings, with leading and
trailing dots stripped. A default key ``a.b.c`` counts as read when one module holds
``a.b.c`` itself, or holds its parent path ``a.b`` (often a module constant such as
``SECTION = "sdk.sftp"`` or ``PM = "agent.package_manager."``) together with its leaf ``c``
(``f"{SECTION}.{name}"`` over a tuple of names, ``PM + "type"``). Modules that name keys without
reading them — the environment-variable table and the ``config init`` template — are left out.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

from clearml_core.config import parse_hocon_file
from clearml_core.config.tree import leaves

ROOT = Path(__file__).parents[1]
CORE = ROOT / "core" / "clearml_core"
NOT_USED_FILE = CORE / "config" / "clearml_keys.conf"
DOCS = ROOT / "docs" / "configuration.md"
# name keys without reading them: the variable → key table, and the template `config init` writes
NOT_READERS = {CORE / "config" / "fixed_env.py", CORE / "config" / "init.py"}


def defaults_files() -> list[Path]:
    return sorted((CORE / "config" / "defaults").glob("*.conf")) + sorted(
        ROOT.glob("plugins/*/clearml_core_*/defaults.conf")
    )


def modules() -> Iterator[Path]:
    yield from (path for path in sorted(CORE.rglob("*.py")) if "testing" not in path.relative_to(CORE).parts)
    yield from sorted(ROOT.glob("plugins/*/clearml_core_*/**/*.py"))


def strings_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    # f-string fragments are Constant nodes inside JoinedStr, so one walk finds both kinds
    return {
        node.value.strip(".")
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
    }


def is_read(key: str, module_strings: list[set[str]]) -> bool:
    parent, _, leaf = key.rpartition(".")
    return any(key in found or (parent and parent in found and leaf in found) for found in module_strings)


def unread_keys() -> list[str]:
    module_strings = [strings_of(path) for path in modules() if path not in NOT_READERS]
    keys = [key for path in defaults_files() for key, _value in leaves(parse_hocon_file(path))]
    return [key for key in keys if not is_read(key, module_strings)]


def test_every_default_key_is_read_by_the_code() -> None:
    unread = unread_keys()
    assert not unread, (
        "these keys of the shipped defaults are read by no module; honour each one, or move it to "
        f"{NOT_USED_FILE.relative_to(ROOT)} with a reason in docs/configuration.md:\n  " + "\n  ".join(unread)
    )


def test_the_scan_sees_reads_through_a_section_constant(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text(
        'SECTION = "sdk.sftp"\n'
        'PM = "agent.package_manager."\n'
        "def f(config):\n"
        '    """Mentions sdk.metrics.images.format, which does not count."""\n'
        '    for name in ("username", "password"):\n'
        '        config.get(f"{SECTION}.{name}")\n'
        '    return config.get(PM + "type"), config.get("api.files_server")\n'
    )
    found = [strings_of(module)]
    for key in ("sdk.sftp.username", "sdk.sftp.password", "agent.package_manager.type", "api.files_server"):
        assert is_read(key, found), key
    for key in ("sdk.sftp.keepalive", "sdk.metrics.images.format", "api.web_server"):
        assert not is_read(key, found), key


def _documented_keys() -> set[str]:
    """Keys named in backticks in the docs section about ClearML keys clearml-core does not use."""
    text = DOCS.read_text(encoding="utf-8")
    start = text.index("## ClearML settings clearml-core does not use")
    end = text.find("\n## ", start + 1)
    section = text[start : end if end > 0 else len(text)]
    return set(re.findall(r"`([a-z_][\w.*]*)`", section))


def test_every_not_used_key_is_covered_by_the_docs() -> None:
    documented = _documented_keys()

    def covered(key: str) -> bool:
        # a key is covered when it, or one of its parents, is named (`agent.bootstrap` covers all
        # of agent.bootstrap.*); a trailing `*` names a prefix (`agent.docker_*`)
        parts = key.split(".")
        prefixes = {".".join(parts[:n]) for n in range(1, len(parts) + 1)}
        return bool(prefixes & documented) or any(
            pattern.endswith("*") and key.startswith(pattern[:-1]) for pattern in documented
        )

    keys = [key for key, _value in leaves(parse_hocon_file(NOT_USED_FILE))]
    assert keys, "clearml_keys.conf lists no key"
    missing = [key for key in keys if not covered(key)]
    assert not missing, "docs/configuration.md does not say why these keys are not used:\n  " + "\n  ".join(
        missing
    )


def test_no_key_is_both_used_and_listed_as_not_used() -> None:
    defaults = {key for path in defaults_files() for key, _value in leaves(parse_hocon_file(path))}
    not_used = {key for key, _value in leaves(parse_hocon_file(NOT_USED_FILE))}
    assert not defaults & not_used
