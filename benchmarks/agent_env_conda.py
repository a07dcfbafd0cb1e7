"""The conda rows of ``agent_env.py``: a cold conda environment against bare rattler, and a warm start.

1. Cold: a local channel (built here: the running Python as a conda package, its pip, and
   ``PACKAGES`` packages of ``PAYLOAD`` bytes each, with dependencies between them), every cache
   empty. The agent's ``environment`` stage (``type: conda``: read the request, solve, link,
   freeze, mark the cache entry) against bare rattler (``rattler.solve`` + ``rattler.install`` of
   the same specs into a fresh prefix with a fresh package cache), each in a fresh process after
   what a running daemon has already done (rattler imported, the virtual packages detected);
   starting Python is not part of either. Target: the median of run-by-run ratios ≤ 1.2.
2. Warm: a daemon with ``type: conda`` runs, interleaved, a folder task without requirements (the
   reference) and a folder task whose conda environment is cached; from enqueueing to the
   script's first line. Targets: ≤ 500 ms, overhead ≤ 1.5x the reference's.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

from warm_start import SCRIPT, add_stages, environ, first_line_ms, serving

COLD_RATIO = 1.2
WARM_TARGET_MS = 500.0
WARM_RATIO = 1.5
PACKAGES = 12
PAYLOAD = 4_000_000
SPECS = ["bench-app"]

BARE = """
import asyncio, json, sys, time
from pathlib import Path
from rattler import Channel, ChannelPriority, GenericVirtualPackage, PackageName, Version, BuildString, install, solve
from rattler.virtual_package import Override, VirtualPackage, VirtualPackageOverrides
channel, work, specs = sys.argv[1], Path(sys.argv[2]), json.loads(sys.argv[3])
virtual = [v.into_generic() for v in VirtualPackage.detect(VirtualPackageOverrides(cuda=Override.string("")))]
async def main():
    started = time.perf_counter()
    records = await solve(sources=[Channel(channel)], specs=specs, platforms=["linux-64", "noarch"],
                          virtual_packages=virtual, channel_priority=ChannelPriority.Strict,
                          add_pip_as_python_dependency=True)
    await install(records, target_prefix=work / "env", cache_dir=work / "pkgs", show_progress=False)
    print(json.dumps({"seconds": time.perf_counter() - started, "packages": len(records)}))
    await asyncio.sleep(0.01)  # py-rattler's threads may crash an exit right after a call (see aio.py)
asyncio.run(main())
"""

STAGE = """
import json, sys, time
from pathlib import Path
from clearml_core.settings import load_config
from clearml_core.controlplane import Requirements, Task
from clearml_core.environments.builder import EnvironmentBuilder
from clearml_core.environments.process import BuildLog
import clearml_core_pkgmgr_conda.manager, rattler
from clearml_core_pkgmgr_conda.solver import virtual_packages

config_file, specs, private = sys.argv[1], json.loads(sys.argv[2]), Path(sys.argv[3])
config = load_config(config_file)
task = Task(id="bench", requirements=Requirements(conda=json.dumps({"dependencies": specs})))
builder = EnvironmentBuilder(config)
builder.load_manager("conda")  # what a running daemon has done already: plugins loaded ...
virtual_packages(None)  # ... and the machine's virtual packages detected
stamps = []
started = time.perf_counter()
def log(stream, line):
    stamps.append((round(time.perf_counter() - started, 3), line))
prepared = builder.prepare(task, builder.context(), BuildLog(log), private)
seconds = time.perf_counter() - started
print(json.dumps({"seconds": seconds, "source": prepared.source, "packages": prepared.frozen, "log": stamps}))
"""


def hocon(settings: dict[str, Any]) -> str:
    return "".join(f"{key}: {json.dumps(value)}\n" for key, value in settings.items())


def make_channel(root: Path) -> Path:
    """The benchmark's channel: python, pip, ``bench-app`` needing ``PACKAGES`` libraries in a chain."""
    from clearml_core_pkgmgr_conda.testing import index_channel, make_package, pip_package, python_package

    channel = root / "channel"
    python_package(channel)
    pip_package(channel)
    names = [f"bench-lib{index:02d}" for index in range(PACKAGES)]
    for index, name in enumerate(names):
        depends = ["python", *names[index + 1 : index + 2]]
        make_package(channel, name, "1.0", depends=depends, payload_bytes=PAYLOAD)
    make_package(channel, "bench-app", "1.0", depends=names)
    return index_channel(channel)


def _run(argv: list[str], env: dict[str, str]) -> dict[str, Any]:
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"{' '.join(argv[:3])} failed ({done.returncode}):\n{(done.stderr or done.stdout)[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def cold(root: Path, runs: int) -> tuple[dict[str, list[float]], dict[str, int]]:
    """Seconds of each cold run: bare rattler and the agent's conda stage, back to back, alternating."""
    channel = make_channel(root)
    bare_script, stage_script = root / "bare.py", root / "stage.py"
    bare_script.write_text(BARE)
    stage_script.write_text(STAGE)
    times: dict[str, list[float]] = {"bare rattler": [], "agent, type: conda": []}
    packages: dict[str, int] = {}

    def bare(work: Path) -> None:
        result = _run(
            [sys.executable, str(bare_script), str(channel), str(work), json.dumps(SPECS)], dict(os.environ)
        )
        times["bare rattler"].append(result["seconds"])
        packages["bare rattler"] = result["packages"]

    def agent(work: Path) -> None:
        conf = work / "clearml.conf"
        conf.write_text(
            hocon(
                {
                    "agent.package_manager.type": "conda",
                    "agent.package_manager.conda_channels": [str(channel)],
                    "agent.venvs_cache.path": str(work / "venvs-cache"),
                    "agent.venvs_dir": str(work / "venvs-builds"),
                    "agent.pip_download_cache.path": str(work / "downloads"),
                    "agent.cuda_version": 0,
                }
            )
        )
        env = {**os.environ, "HOME": str(work), "CLEARML_CONFIG_FILE": str(conf)}
        result = _run([sys.executable, str(stage_script), str(conf), json.dumps(SPECS), str(work / "p")], env)
        if result["source"] != "cache-build":
            sys.exit(f"expected a cold conda build, got {result['source']}")
        times["agent, type: conda"].append(result["seconds"])
        packages["agent, type: conda"] = len(result["packages"])
        if os.environ.get("BENCH_VERBOSE"):
            for stamp, line in result["log"]:
                print(f"  {stamp:7.3f} {line[:150]}", file=sys.stderr)

    for round_ in range(runs):
        for way in (bare, agent) if round_ % 2 == 0 else (agent, bare):
            work = root / f"cold-{round_}-{way.__name__}"
            work.mkdir()
            way(work)
            shutil.rmtree(work, ignore_errors=True)
    return times, packages


REFERENCE = "folder task, no requirements"
CACHED = "folder task, cached conda environment"


def warm(root: Path, runs: int, stages: dict[str, dict[str, list[float]]]) -> dict[str, list[float]]:
    """Milliseconds from enqueueing to the first line, per kind of task, through a conda daemon."""
    from clearml_core.controlplane import Requirements, Script, Task, open_control_plane

    channel = make_channel(root / "warm-channel-root")
    home = root / "conda-warm-home"
    home.mkdir()
    conf = home / "clearml.conf"
    conf.write_text(
        hocon(
            {
                "agent.package_manager.type": "conda",
                "agent.package_manager.conda_channels": [str(channel)],
                "agent.cuda_version": 0,
            }
        )
    )
    folder = root / "conda-warm-task"
    folder.mkdir()
    (folder / "script.py").write_text(SCRIPT)
    conda = {REFERENCE: "", CACHED: json.dumps({"dependencies": SPECS})}
    times: dict[str, list[float]] = {kind: [] for kind in conda}
    with environ(HOME=str(home), CLEARML_CONFIG_FILE=str(conf)):
        plane = open_control_plane()
        with serving(plane, "conda-warm", root / "conda-daemon.log"):
            for round_ in range(runs + 1):  # the first round fills the caches and is not counted
                for kind, text in conda.items():
                    script = Script(folder=str(folder), entry_point="script.py")
                    task = plane.create_task(
                        Task(name="warm", script=script, requirements=Requirements(conda=text))
                    )
                    milliseconds, record = first_line_ms(plane, task.id, "conda-warm", kind)
                    if round_ > 0:
                        times[kind].append(milliseconds)
                        add_stages(stages, f"conda daemon: {kind}", record)
    return times


def rows(
    cold_times: dict[str, list[float]], warm_times: dict[str, list[float]], plain: float
) -> list[tuple[str, str, str, bool]]:
    """The table's rows: (check, result, target, passed)."""
    bare, agent = cold_times["bare rattler"], cold_times["agent, type: conda"]
    paired = statistics.median(a / b for a, b in zip(agent, bare, strict=True))
    reference = statistics.median(warm_times[REFERENCE]) - plain
    cached = statistics.median(warm_times[CACHED])
    overhead = cached - plain
    return [
        (
            "cold: agent (type: conda) vs bare rattler",
            f"{statistics.median(agent):.2f} s vs {statistics.median(bare):.2f} s; run by run {paired:.2f}x "
            f"(spread {min(a / b for a, b in zip(agent, bare, strict=True)):.2f}-"
            f"{max(a / b for a, b in zip(agent, bare, strict=True)):.2f})",
            f"<= {COLD_RATIO}x",
            paired <= COLD_RATIO,
        ),
        (
            f"warm start: {CACHED}",
            f"{cached:.0f} ms median (max {max(warm_times[CACHED]):.0f}); overhead {overhead:.0f} ms = "
            f"{overhead / reference:.2f}x the folder task's ({reference:.0f} ms, same daemon)",
            f"<= {WARM_TARGET_MS:g} ms, <= {WARM_RATIO}x",
            cached <= WARM_TARGET_MS and overhead <= WARM_RATIO * reference,
        ),
    ]
