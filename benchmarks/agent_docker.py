"""Docker mode against a bare ``docker run``: how long a warm task takes to start, and what an idle
daemon costs, in one run, as a table with PASS/FAIL.

1. Reference: ``docker run --rm --network host IMAGE python3 script.py`` (the script mounted in),
   from starting the command to the script's first line (median of the runs).
2. Warm task: a daemon in docker mode (``--docker IMAGE``, polling every second); the image is
   here, clearml-core's environment in the image and the task's environment (one requirement, from
   a package index on 127.0.0.1) are cached by a first run that is not counted. From enqueueing the
   task to its script's first line (median). Target: at most 1.5 times the reference + 300 ms.
3. Idle daemon: the same daemon with nothing to do, CPU time over 60 s (``--quick``: 15 s) as a
   share of one core (target ≤ 1%).

The engine and the image are the docker tests' (``plugins/runner_docker/tests/engine.py``): the
engine that answers, or a ``dockerd`` started in a temporary folder; the image made with
debootstrap. Everything else happens in a temporary home folder. Run from the workspace venv, as
root or with an engine: ``uv run python benchmarks/agent_docker.py [--quick]``. Exits 1 when a
target is missed.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from common import cpu_share, machine, verdicts, wait_for

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

RATIO_TARGET = 1.5
EXTRA_TARGET_MS = 300.0
IDLE_TARGET_PERCENT = 1.0
SCRIPT = "import time; print(repr(time.time()), flush=True)\nimport tinypkg\n"


@contextlib.contextmanager
def engine(work: Path) -> Iterator[tuple[str, str]]:
    """(engine URL, image): the docker tests' engine and image."""
    from plugins.runner_docker.tests import engine as test_engine

    try:
        urls = test_engine.engine_url(work)
        url = next(urls)
    except BaseException as error:  # pytest's skip/fail outcomes say what is missing
        sys.exit(f"no container engine: {error}")
    try:
        import docker

        client = docker.DockerClient(base_url=url, timeout=120)
        try:
            image = test_engine.ensure_image(client)
        except BaseException as error:
            sys.exit(f"no test image: {error}")
        yield url, image
    finally:
        with contextlib.suppress(StopIteration):
            next(urls)


@contextlib.contextmanager
def index(work: Path) -> Iterator[str]:
    """A package index with ``tinypkg`` on 127.0.0.1."""
    import functools
    import http.server

    from clearml_core.testing.packages import make_index, make_wheel
    from clearml_core.testing.servers import free_port

    root = make_index(work / "simple", [make_wheel(work / "wheels", "tinypkg", "1.0")])

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    handler = functools.partial(Quiet, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def bare_docker(image: str, folder: Path, env: dict[str, str], runs: int) -> float:
    """Seconds from ``docker run … python3 script.py`` to the script's first line (median)."""
    docker = shutil.which("docker")
    if docker is None:
        sys.exit("the docker command is needed for the reference run")
    times = []
    script = "import time; print(repr(time.time()), flush=True)\n"
    (folder / "bare.py").write_text(script)
    for _ in range(runs):
        before = time.time()
        out = subprocess.run(
            [
                docker,
                "run",
                "--rm",
                "--network",
                "host",
                "-v",
                f"{folder}:/task",
                image,
                "python3",
                "/task/bare.py",
            ],
            capture_output=True,
            text=True,
            check=True,
            env=env,
        ).stdout
        times.append(float(out.split()[0]) - before)
    return statistics.median(times)


def start_daemon(env: dict[str, str], image: str, log: Path) -> subprocess.Popen[bytes]:
    with open(log, "wb") as handle:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "clearml_core.cli.main",
                "agent",
                "daemon",
                "--queue",
                "lat",
                "--docker",
                image,
                "--polling-interval",
                "1",
            ],
            stdout=handle,
            stderr=subprocess.STDOUT,
            env=env,
        )


def run_task(plane, folder: Path) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """Enqueue a task; (seconds to its first line, its stage timings as recorded)."""
    from clearml_core.controlplane import Requirements, Script, Task, TaskStatus

    task = plane.create_task(
        Task(
            name="lat",
            script=Script(folder=str(folder), entry_point="script.py"),
            requirements=Requirements(pip=["tinypkg"]),
        )
    )
    time.sleep(0.5)  # let the daemon settle into its idle wait, as it would be
    enqueued = time.time()
    plane.enqueue(task.id, "lat")
    first: dict[str, float] = {}

    def seen() -> bool:
        for event in plane.read_logs(task.id):
            for line in event.lines:
                with contextlib.suppress(ValueError):
                    first.setdefault("line", float(line))
        return "line" in first

    wait_for(seen, 600, "the task's first line")
    wait_for(lambda: TaskStatus(plane.get_task(task.id).status).is_final, 600, "the task to end")
    record = plane.get_task(task.id)
    if record.status != TaskStatus.COMPLETED:
        sys.exit(f"the task failed: {record.status_reason}")
    return first["line"] - enqueued, record.runtime.get("environment", {}).get("source", "?")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs, a 15 s idle window")
    args = parser.parse_args(argv)
    runs = 5 if args.quick else 10
    idle_seconds = 15.0 if args.quick else 60.0

    work = Path(tempfile.mkdtemp(prefix="clearml-bench-docker-"))
    home = work / "home"
    home.mkdir()
    daemon = None
    try:
        (work / "engine").mkdir()
        with engine(work / "engine") as (url, image), index(work) as index_url:
            os.environ["HOME"] = str(home)
            os.environ["DOCKER_HOST"] = url
            for name in ("CLEARML_CONFIG_FILE", "CLEARML_WORKER_ID", "CLEARML_WORKER_NAME"):
                os.environ.pop(name, None)
            conf = home / "clearml.conf"
            conf.write_text(
                "agent.docker_install_opencv_libs: false\n"
                "agent.package_manager.pip_version: []\n"
                f'agent.extra_docker_arguments: ["-e", "PIP_INDEX_URL={index_url}", "-e", "UV_INDEX_URL={index_url}",'
                ' "-e", "PIP_CONFIG_FILE=/dev/null", "-e", "UV_NO_CONFIG=1"]\n'
            )
            os.environ["CLEARML_CONFIG_FILE"] = str(conf)
            env = dict(os.environ)
            folder = home / "task"
            folder.mkdir()
            (folder / "script.py").write_text(SCRIPT)
            bare = bare_docker(image, folder, env, runs)

            from clearml_core.controlplane import open_control_plane

            plane = open_control_plane()
            plane.create_queue("lat")
            daemon = start_daemon(env, image, home / "daemon.log")
            wait_for(lambda: plane.list_workers(), 60, "the daemon to register")
            warmup, source = run_task(
                plane, folder
            )  # builds the wheels, the agent's and the task's environment
            timings = []
            for _ in range(runs):
                seconds, source = run_task(plane, folder)
                timings.append(seconds)
            time.sleep(2.0)  # the last task's threads wind down
            idle = cpu_share([daemon.pid], idle_seconds)[0]
    finally:
        if daemon is not None and daemon.poll() is None:
            daemon.terminate()
            daemon.wait(60)
        shutil.rmtree(work, ignore_errors=True)

    warm = statistics.median(timings)
    limit = RATIO_TARGET * bare + EXTRA_TARGET_MS / 1000
    rows = [
        (
            "warm docker task: enqueue → first line",
            f"{warm * 1000:.0f} ms median (max {max(timings) * 1000:.0f}) vs bare docker run {bare * 1000:.0f} ms "
            f"= {warm / bare:.2f}x; environment {source}",
            f"≤ 1.5 x bare + 300 ms = {limit * 1000:.0f} ms",
            warm <= limit,
        ),
        (
            f"idle daemon in docker mode, polling 1 s, {idle_seconds:.0f} s",
            f"{idle:.2f}% of one core",
            f"≤ {IDLE_TARGET_PERCENT:g}%",
            idle <= IDLE_TARGET_PERCENT,
        ),
    ]
    print(f"agent in docker mode{' (--quick)' if args.quick else ''}: image {image}, engine {url}")
    print(machine())
    print(f"(first task, building the wheels and both environments: {warmup:.1f} s; runs: {runs})")
    print()
    return verdicts(rows)


if __name__ == "__main__":
    sys.exit(main())
