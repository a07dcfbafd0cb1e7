"""``StorageManager`` against the real ``clearml`` 2.x package, in its own environment (slow).

ClearML's package is installed once into a side environment (``tests/clearml_side.py``), its
answers are dumped there as JSON and compared with ours: every public classmethod with the same
parameters and defaults, ``set_cache_file_limit``'s return value, and local ``list``.
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Any

import pytest

from clearml_core import StorageManager
from tests.clearml_side import clearml_env, run_clearml

pytestmark = pytest.mark.slow

SIGNATURES = r"""
import inspect, json
from {module} import StorageManager

def describe(cls):
    found = {{}}
    for name in dir(cls):
        if name.startswith("_") or not isinstance(inspect.getattr_static(cls, name), classmethod):
            continue
        found[name] = [
            {{
                "name": p.name,
                "kind": p.kind.name,
                "default": None if p.default is p.empty else repr(p.default),
                "required": p.default is p.empty,
            }}
            for p in inspect.signature(getattr(cls, name)).parameters.values()
        ]
    return found

print(json.dumps(describe(StorageManager)))
"""


def test_every_public_classmethod_has_clearmls_parameters(clearml_python: Path, clearml_home: Path) -> None:
    dumped = run_clearml(
        clearml_python, SIGNATURES.format(module="clearml"), env=clearml_env(clearml_home / "side")
    )
    theirs = json.loads(dumped.strip().splitlines()[-1])
    ours = {
        name: _params(name)
        for name in theirs
        if isinstance(inspect.getattr_static(StorageManager, name, None), classmethod)
    }
    assert set(theirs) - set(ours) == set(), "ClearML's StorageManager has classmethods ours lacks"
    assert {"get_stream", "set_report_upload_chunk_size", "set_report_download_chunk_size"} <= set(theirs)
    for name, parameters in theirs.items():
        mine = ours[name]
        assert mine[: len(parameters)] == parameters, f"{name}: ours {mine} != ClearML's {parameters}"
        extra = mine[len(parameters) :]
        assert all(p["kind"] == "KEYWORD_ONLY" and not p["required"] for p in extra), (name, extra)


def _params(name: str) -> list[dict[str, Any]]:
    return [
        {
            "name": p.name,
            "kind": p.kind.name,
            "default": None if p.default is p.empty else repr(p.default),
            "required": p.default is p.empty,
        }
        for p in inspect.signature(getattr(StorageManager, name)).parameters.values()
    ]


PROBE = r"""
import json, sys
from {module} import StorageManager

root = sys.argv[1]
answers = {{}}
for url in [root + "/tree", root + "/tree/", "file://" + root + "/tree", root + "/tre", root + "/missing",
            root + "/missing/", root + "/empty", root + "/treefile.txt", "file://" + root + "/missing"]:
    for options in [{{}}, {{"return_full_path": True}}, {{"with_metadata": True, "return_full_path": True}}]:
        found = StorageManager.list(url, **options)
        if found is not None:
            found = sorted(
                (entry if isinstance(entry, str) else {{"name": entry["name"], "size": entry["size"]}}
                 for entry in found),
                key=str,
            )
        answers["list " + url + " " + json.dumps(options)] = found
answers["limit new 7"] = StorageManager.set_cache_file_limit(7, "brand-new")
answers["limit new 3"] = StorageManager.set_cache_file_limit(3, "brand-new")
answers["limit global 3"] = StorageManager.set_cache_file_limit(3)
answers["limit global 300"] = StorageManager.set_cache_file_limit(300)
answers["limit zero"] = StorageManager.set_cache_file_limit(0, "zero")
StorageManager.get_local_copy(root + "/treefile.txt", cache_context="used")
answers["limit used 4"] = StorageManager.set_cache_file_limit(4, "used")
answers["files server"] = StorageManager.get_files_server()
print(json.dumps(answers))
"""


def test_local_lists_cache_limits_and_files_server_answer_as_clearml(
    clearml_python: Path, clearml_home: Path, tmp_path: Path
) -> None:
    import os
    import subprocess
    import sys

    root = tmp_path / "x"
    for name in ("tree/a.txt", "tree/sub/b.txt", "tree2/c.txt", "treefile.txt"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(name)
    (root / "empty").mkdir()
    conf = 'api { api_server: "http://10.1.2.3:8008", web_server: "http://10.1.2.3:8080" }\n'
    env = clearml_env(clearml_home, conf)
    # the side environment's conf names a server (127.0.0.1:9); ours reads the same file
    (clearml_home / "clearml.conf").write_text(conf)
    answer = run_clearml(clearml_python, PROBE.format(module="clearml"), str(root), env=env)
    theirs = json.loads(answer.strip().splitlines()[-1])
    ours_env = {**os.environ, "HOME": str(clearml_home), "CLEARML_CACHE_DIR": str(tmp_path / "cache")}
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(module="clearml_core"), str(root)],
        capture_output=True,
        text=True,
        env=ours_env,
        timeout=120,
        check=True,
    )
    ours = json.loads(done.stdout)
    assert ours == theirs
