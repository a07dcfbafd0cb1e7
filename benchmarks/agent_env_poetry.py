"""The poetry rows of ``agent_env.py``: a cold build of a Poetry lock against ``poetry install``, and a
warm start.

1. Cold: a Poetry project of ``agent_env.REQUIREMENTS``, locked by a real Poetry (a side environment
   under ``.local/bench-poetry``) against the environment's index. The agent's ``environment``
   stage (``type: poetry``: read the lock, install it with uv, hashes checked, freeze, mark the
   cache entry) against ``poetry install --no-root`` of the same lock into an empty virtual
   environment (fresh Poetry cache; the venv is made before the clock starts), back to back,
   alternating. Target: ≤ 0.5x.
2. Warm: a daemon with ``type: poetry`` runs, interleaved, a folder task without requirements (the
   reference) and the Poetry project's folder task, its environment cached; from enqueueing to the
   script's first line. Targets: ≤ 500 ms, overhead ≤ 1.5x the reference's (the same daemon).
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from warm_start import SCRIPT, add_stages, environ, first_line_ms, serving

COLD_RATIO = 0.5
WARM_TARGET_MS = 500.0
WARM_RATIO = 1.5
ROOT = Path(__file__).resolve().parent.parent
SIDE = ROOT / ".local" / "bench-poetry"
AGENT = "agent, type: poetry"
POETRY = "poetry install into an empty venv"
REFERENCE = "folder task, no requirements"
CACHED = "poetry folder task, cached environment"

STAGE = """
import json, sys, time
from pathlib import Path
from clearml_core.settings import load_config
from clearml_core.controlplane import Task
from clearml_core.environments.builder import EnvironmentBuilder
from clearml_core.environments.process import BuildLog

config_file, project, private = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
config = load_config(config_file)
task = Task(id="bench")
builder = EnvironmentBuilder(config)
def context():
    return builder.context(code_dir=project, working_dir=project)
builder.plan(task, context())  # what a running daemon has done already: plugins loaded, uv found
stamps = []
started = time.perf_counter()
def log(stream, line):
    stamps.append((round(time.perf_counter() - started, 3), line))
prepared = builder.prepare(task, context(), BuildLog(log), private)
seconds = time.perf_counter() - started
print(json.dumps({"seconds": seconds, "source": prepared.source, "packages": prepared.frozen, "log": stamps}))
"""


class PoetryProject:
    """The benchmark's Poetry project, locked by a real Poetry (plugins/pkgmgr_poetry/tests/support.py)."""

    def __init__(self, root: Path, requirements: list[str]) -> None:
        sys.path.insert(0, str(ROOT))
        from plugins.pkgmgr_poetry.tests import support

        python = support.poetry_python(SIDE / "venv")
        self.version = support.installed_poetry(python)
        self.executable = str(python.parent / "poetry")
        self.env = support.poetry_env(root / "poetry-lock-cache")
        self.project = support.write_project(
            root / "poetry-project", support.simple_index_url(python), dependencies=requirements
        )
        (self.project / "script.py").write_text(SCRIPT)
        support.lock(python, self.project, root / "poetry-lock-cache")


def hocon(settings: dict[str, Any]) -> str:
    return "".join(f"{key}: {json.dumps(value)}\n" for key, value in settings.items())


def _count(venv: Path) -> int:
    return len(list(venv.glob("lib/python*/site-packages/*.dist-info")))


def cold(
    root: Path, runs: int, requirements: list[str]
) -> tuple[PoetryProject, dict[str, list[float]], dict[str, int]]:
    """Seconds of each cold run: ``poetry install`` and the agent's poetry stage, alternating."""
    from clearml_core_pkgmgr_pip.tools import find_uv

    from clearml_core.environments.python import current_python

    uv, python = find_uv(), current_python().executable
    if uv is None:
        sys.exit("uv is not available: pip install uv")
    poetry = PoetryProject(root, requirements)
    stage_script = root / "poetry-stage.py"
    stage_script.write_text(STAGE)
    times: dict[str, list[float]] = {AGENT: [], POETRY: []}
    packages: dict[str, int] = {}

    def poetry_install(work: Path) -> None:
        venv = work / "venv"
        subprocess.run([uv, "venv", "--quiet", "--no-project", "--python", python, str(venv)], check=True)
        env = {
            **poetry.env,
            "POETRY_CACHE_DIR": str(work / "poetry-cache"),
            "VIRTUAL_ENV": str(venv),
            "POETRY_VIRTUALENVS_PATH": str(work / "poetry-envs"),
        }
        started = time.perf_counter()
        done = subprocess.run(
            [poetry.executable, "install", "--no-root", "--no-ansi"],
            env=env,
            cwd=poetry.project,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            sys.exit(f"poetry install failed ({done.returncode}):\n{(done.stderr or done.stdout)[-3000:]}")
        times[POETRY].append(time.perf_counter() - started)
        packages[POETRY] = _count(venv)

    def agent(work: Path) -> None:
        conf = work / "clearml.conf"
        conf.write_text(
            hocon(
                {
                    "agent.package_manager.type": "poetry",
                    "agent.venvs_cache.path": str(work / "venvs-cache"),
                    "agent.venvs_dir": str(work / "venvs-builds"),
                    "agent.pip_download_cache.path": str(work / "downloads"),
                }
            )
        )
        env = {**os.environ, "HOME": str(work), "CLEARML_CONFIG_FILE": str(conf)}
        argv = [sys.executable, str(stage_script), str(conf), str(poetry.project), str(work / "p")]
        done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            sys.exit(f"the agent's poetry stage failed:\n{done.stderr[-3000:]}")
        result = json.loads(done.stdout.strip().splitlines()[-1])
        if result["source"] != "cache-build":
            sys.exit(f"expected a cold poetry build, got {result['source']}")
        times[AGENT].append(result["seconds"])
        packages[AGENT] = len(result["packages"])
        if os.environ.get("BENCH_VERBOSE"):
            for stamp, line in result["log"]:
                print(f"  {stamp:7.3f} {line[:150]}", file=sys.stderr)

    for round_ in range(runs):
        # back to back, in turns first and second: the index's CDN warms up for whoever comes second
        for way in (poetry_install, agent) if round_ % 2 == 0 else (agent, poetry_install):
            work = root / f"poetry-cold-{round_}-{way.__name__}"
            work.mkdir()
            way(work)
            shutil.rmtree(work, ignore_errors=True)
    return poetry, times, packages


def warm(
    root: Path, runs: int, stages: dict[str, dict[str, list[float]]], poetry: PoetryProject
) -> dict[str, list[float]]:
    """Milliseconds from enqueueing to the first line, per kind of task, through a poetry daemon
    (the only daemon running: an idle daemon wakes at every commit of the store)."""
    from clearml_core.controlplane import Script, Task, open_control_plane

    home = root / "poetry-warm-home"
    home.mkdir()
    conf = home / "clearml.conf"
    conf.write_text(hocon({"agent.package_manager.type": "poetry"}))
    folder = root / "poetry-warm-task"
    folder.mkdir()
    (folder / "script.py").write_text(SCRIPT)
    kinds = {REFERENCE: folder, CACHED: poetry.project}
    times: dict[str, list[float]] = {kind: [] for kind in kinds}
    with environ(HOME=str(home), CLEARML_CONFIG_FILE=str(conf)):
        plane = open_control_plane()
        with serving(plane, "poetry-warm", root / "poetry-daemon.log"):
            for round_ in range(runs + 1):  # the first round fills the caches and is not counted
                for kind, code in kinds.items():
                    script = Script(folder=str(code), entry_point="script.py")
                    task = plane.create_task(Task(name="warm", script=script))
                    milliseconds, record = first_line_ms(plane, task.id, "poetry-warm", kind)
                    if round_ > 0:
                        times[kind].append(milliseconds)
                        add_stages(stages, f"poetry daemon: {kind}", record)
    return times


def rows(
    poetry: PoetryProject,
    cold_times: dict[str, list[float]],
    warm_times: dict[str, list[float]],
    plain: float,
) -> list[tuple[str, str, str, bool]]:
    """The table's rows: (check, result, target, passed)."""
    agent, install = statistics.median(cold_times[AGENT]), statistics.median(cold_times[POETRY])
    reference = statistics.median(warm_times[REFERENCE]) - plain
    cached = statistics.median(warm_times[CACHED])
    overhead = cached - plain
    return [
        (
            f"cold: agent (type: poetry) vs poetry install ({poetry.version})",
            f"{agent:.2f} s vs {install:.2f} s = {agent / install:.2f}x",
            f"<= {COLD_RATIO}x",
            agent <= COLD_RATIO * install,
        ),
        (
            f"warm start: {CACHED}",
            f"{cached:.0f} ms median (max {max(warm_times[CACHED]):.0f}); overhead {overhead:.0f} ms = "
            f"{overhead / reference:.2f}x the folder task's ({reference:.0f} ms, same daemon)",
            f"<= {WARM_TARGET_MS:g} ms, <= {WARM_RATIO}x",
            cached <= WARM_TARGET_MS and overhead <= WARM_RATIO * reference,
        ),
    ]
