"""Dispatch through the ClearML API server (``clearml-core server``), over SQLite and Redis in one
run, as a table with PASS/FAIL.

Each "agent" is a process that does what clearml-agent does to take a task, over HTTP/1.1 with a
kept-alive connection and a session token: ``queues.get_next_task``, then ``tasks.started``
(``force``, ``status_message``), then ``events.add_batch`` with the "pulled by" log line.

1. Dispatch throughput: N queued tasks, 8 agent processes taking them as fast as they can from one
   queue; tasks per second from the moment all eight are released until the queue is empty, each
   task handed out exactly once (target ≥ 500 dispatches/s). ``--repeat`` runs; median and range.
2. Dispatch latency: 8 idle clearml-core agents on the ClearML control plane, each waiting as the
   daemon does (``wait_for_tasks``: the server's long poll ``queues.wait_for_tasks``, then ``pop``:
   ``get_next_task`` and ``started``); from just before ``tasks.enqueue`` to an agent holding the
   task (p99 ≤ 100 ms).
3. API overhead per dispatch: one client taking tasks one after another through the API, against
   the same control-plane operations done directly in-process (``pop``, ``update_task``,
   ``append_logs``); the difference of the medians (≤ 3 ms).
4. Idle agent: one such clearml-core agent waiting on an empty queue; the CPU it costs the server's
   processes, and the agent itself, as a share of one core (≤ 1% together). And the same for an
   agent that polls as clearml-agent does: ``queues.get_next_task`` every ``--poll`` seconds (5).
5. Idle daemon: clearml-core's own ``agent daemon`` on the ClearML control plane (what
   ``CLEARML_API_HOST`` and the key select), with its default polling and reporting; the same
   share of the server and the daemon (≤ 1% together).

The server is the real command in its own processes (``--workers``, 2 unless told: one per core of
the 2-core machines CI runs on); the Redis is a ``redis-server`` started here on
127.0.0.1 (Debian's package; ``scripts/test.sh`` installs it). Everything happens in a temporary
home folder. Run from the workspace venv: ``uv run python benchmarks/server.py [--quick]``. Exits 1
when a target is missed (on either store).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import selectors
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.common import cpu_share, percentile, spread, wait_for  # noqa: E402
from plugins.controlplane_redis.tests.support import RedisServer  # noqa: E402

THROUGHPUT_TARGET = 500.0
P99_TARGET_MS = 100.0
OVERHEAD_TARGET_MS = 3.0
IDLE_TARGET_PERCENT = 1.0
AGENTS = 8
KEY = "BENCHMARKACCESSKEY0000000000000"


def client(url: str, secret: str, worker: str):  # type: ignore[no-untyped-def]
    from clearml_core.testing.clearml_server import ApiClient

    api = ApiClient(url, KEY, secret)
    api.login()
    headers = {"Authorization": f"Bearer {api.token}", "X-ClearML-Worker": worker}
    return api, headers


def take(api, headers: dict[str, str], queue: str) -> str | None:  # type: ignore[no-untyped-def]
    """clearml-agent's calls to take a task: pop it, mark it started, log that it was pulled."""
    reply = api.call("queues.get_next_task", {"queue": queue}, headers=headers, version="2.14")
    entry = (reply.data or {}).get("entry")
    if not entry:
        return None
    task_id = str(entry["task"])
    api.call(
        "tasks.started",
        {"task": task_id, "status_message": "pulled by agent", "force": True},
        headers=headers,
        version="2.5",
    )
    line = json.dumps(
        {"type": "log", "task": task_id, "level": "INFO", "msg": f"task {task_id} pulled from bench"}
    )
    batch = {**headers, "Content-Type": "application/json-lines"}
    status, _, _ = api.request("POST", "/events.add_batch", line.encode(), batch)
    if status != 200:
        raise RuntimeError(f"events.add_batch answered {status}")
    return task_id


def agent(url: str, secret: str, worker: str, queue: str, ready: str, go: str, out: str) -> None:
    """One throughput agent: take tasks until the queue is empty; write what it got."""
    api, headers = client(url, secret, worker)
    Path(ready).touch()
    while not os.path.exists(go):
        time.sleep(0.001)
    got = []
    while (task_id := take(api, headers, queue)) is not None:
        got.append(task_id)
    Path(out).write_text(json.dumps({"ids": got, "end": time.time()}))


def poller(url: str, secret: str, worker: str, queue: str, interval: str) -> None:
    """An idle agent as clearml-agent is: ``queues.get_next_task`` every ``interval`` seconds."""
    api, headers = client(url, secret, worker)
    print("ready", flush=True)
    while True:
        if take(api, headers, queue) is None:
            time.sleep(float(interval))


def waiter(url: str, secret: str, worker: str, queue: str) -> None:
    """A clearml-core agent between tasks, on the ClearML control plane: wait as the daemon waits
    (``wait_for_tasks``), then ``pop``; print each task it takes with the time it held it."""
    from clearml_core.controlplane import open_control_plane

    os.environ.update(CLEARML_API_ACCESS_KEY=KEY, CLEARML_API_SECRET_KEY=secret)
    plane = open_control_plane(f"clearml+{url}")
    print("ready", flush=True)
    while True:
        if not plane.wait_for_tasks([queue], 5.0):
            continue
        task = plane.pop([queue], worker)
        if task is not None:
            print(f"{task.id} {time.time()!r}", flush=True)


class Server:
    """``clearml-core server --role api`` on a free port over one control plane."""

    def __init__(
        self, home: Path, plane_url: str, secret: str, env: dict[str, str], workers: int = 1
    ) -> None:
        from clearml_core.testing.servers import free_port, wait_for_port

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = (home / f"server-{self.port}.log").open("wb")
        variables = {**env, "CLEARML_API_ACCESS_KEY": KEY, "CLEARML_API_SECRET_KEY": secret}
        variables["CLEARML_CONFIG_DIR"] = str(home)
        command = [sys.executable, "-m", "clearml_core.cli.main", "server", "--role", "api"]
        command += ["--api-port", str(self.port), "--control-plane", plane_url, "--workers", str(workers)]
        self.process = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT, env=variables)
        wait_for_port(self.port, self.process, 60, name="clearml-core server")

    def pids(self) -> list[int]:
        """The main process and its API workers."""
        import psutil

        return [self.process.pid, *(child.pid for child in psutil.Process(self.process.pid).children())]

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(30)
        self.log.close()


def queue_of(name: str) -> str:
    from clearml_core.server.ids import queue_id

    return queue_id(name)


def fill(plane_url: str, queue: str, count: int) -> None:
    from clearml_core.controlplane import Script, Task, open_control_plane

    with open_control_plane(plane_url) as plane:
        plane.create_queue(queue, exist_ok=True)
        for index in range(count):
            task = plane.create_task(Task(name=f"b{index}", script=Script(entry_point="x.py")))
            plane.enqueue(task.id, queue)


def throughput(
    server: Server, plane_url: str, secret: str, work: Path, count: int, env: dict[str, str], run: str
) -> tuple[float, int, int]:
    queue = f"bench-{run}"
    fill(plane_url, queue, count)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    go = work / "go"
    procs = []
    for index in range(AGENTS):
        args = [
            server.url,
            secret,
            f"agent-{index}",
            queue_of(queue),
            str(work / f"ready{index}"),
            str(go),
            str(work / f"out{index}"),
        ]
        procs.append(subprocess.Popen([sys.executable, __file__, "--agent", *args], env=env))
    wait_for(lambda: all((work / f"ready{i}").exists() for i in range(AGENTS)), 120, "the agents")
    started = time.time()
    go.touch()
    for proc in procs:
        if proc.wait(600) != 0:
            sys.exit("an agent failed")
    results = [json.loads((work / f"out{i}").read_text()) for i in range(AGENTS)]
    ids = [task_id for result in results for task_id in result["ids"]]
    elapsed = max(result["end"] for result in results) - started
    return len(ids) / elapsed, len(ids) - len(set(ids)), len(set(ids))


def latency(server: Server, plane_url: str, secret: str, samples: int, env: dict[str, str]) -> list[float]:
    """Milliseconds from just before tasks.enqueue to one of 8 waiting agents holding the task."""
    from clearml_core.controlplane import Script, Task, open_control_plane
    from clearml_core.testing.clearml_server import ApiClient

    plane = open_control_plane(plane_url)
    plane.create_queue("lat", exist_ok=True)
    queue = queue_of("lat")
    selector = selectors.DefaultSelector()
    procs = []
    for index in range(AGENTS):
        proc = subprocess.Popen(
            [sys.executable, __file__, "--waiter", server.url, secret, f"waiter-{index}", "lat"],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert proc.stdout is not None
        if proc.stdout.readline().strip() != "ready":
            sys.exit("a waiting agent did not start")
        selector.register(proc.stdout, selectors.EVENT_READ)
        procs.append(proc)
    api = ApiClient(server.url, KEY, secret)
    api.login()
    try:
        times = []
        for index in range(samples):
            task = plane.create_task(Task(name=f"lat{index}", script=Script(entry_point="x.py")))
            time.sleep(0.02 + (index % 7) / 7 * 0.3)  # at every phase of the agents' 1 s long-poll slices
            before = time.time()
            if api.call("tasks.enqueue", {"task": task.id, "queue": queue}).status != 200:
                sys.exit("tasks.enqueue failed")
            events = selector.select(timeout=30)
            if not events:
                sys.exit(f"no agent took task {task.id}")
            task_id, held = events[0][0].fileobj.readline().split()  # type: ignore[union-attr]
            if task_id != task.id:
                sys.exit(f"an agent took {task_id}, not {task.id}")
            times.append((float(held) - before) * 1000)
        return times
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(30)
        api.close()
        plane.close()


def overhead(server: Server, plane_url: str, secret: str, samples: int) -> tuple[float, float]:
    """Median milliseconds of one dispatch through the API, and of the same operations done directly."""
    from clearml_core.controlplane import Script, Task, open_control_plane

    fill(plane_url, "seq", samples)
    api, headers = client(server.url, secret, "sequential")
    through_api = []
    for _ in range(samples):
        began = time.perf_counter()
        if take(api, headers, queue_of("seq")) is None:
            sys.exit("the queue ran dry")
        through_api.append((time.perf_counter() - began) * 1000)
    api.close()
    direct = []
    with open_control_plane(plane_url) as plane:
        plane.create_queue("direct", exist_ok=True)
        for index in range(samples):
            plane.enqueue(
                plane.create_task(Task(name=f"d{index}", script=Script(entry_point="x.py"))).id, "direct"
            )
        for _ in range(samples):
            began = time.perf_counter()
            task = plane.pop(["direct"], "direct")
            assert task is not None
            plane.update_task(task.id, attributes={**task.attributes, "status_message": "pulled by agent"})
            plane.append_logs(task.id, [f"task {task.id} pulled from bench"])
            direct.append((time.perf_counter() - began) * 1000)
    return statistics.median(through_api), statistics.median(direct)


def idle_cpu(
    server: Server, plane_url: str, agent: list[str], seconds: float, env: dict[str, str]
) -> tuple[float, float]:
    """Percent of one core the server's processes and one idle agent (``--waiter`` or
    ``--poller`` and its arguments) use while the queue ``idle`` stays empty."""
    from clearml_core.controlplane import open_control_plane

    with open_control_plane(plane_url) as plane:
        plane.create_queue("idle", exist_ok=True)
    proc = subprocess.Popen(
        [sys.executable, __file__, *agent],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        if proc.stdout.readline().strip() != "ready":
            sys.exit("the idle agent did not start")
        time.sleep(2.0)  # past its start-up
        *on_server, on_agent = cpu_share([*server.pids(), proc.pid], seconds)
        return sum(on_server), on_agent
    finally:
        proc.terminate()
        proc.wait(30)


def idle_daemon(
    server: Server, plane_url: str, secret: str, seconds: float, env: dict[str, str]
) -> tuple[float, float]:
    """Percent of one core the server and clearml-core's own daemon use while its queue stays
    empty: ``agent daemon`` on the ClearML control plane (selected by ClearML's variables), waiting
    in the server's long poll and reporting every ``agent.report_period_sec``."""
    from clearml_core.controlplane import open_control_plane

    with open_control_plane(plane_url) as plane:
        plane.create_queue("idle", exist_ok=True)
    variables = {
        **env,
        "CLEARML_API_HOST": server.url,
        "CLEARML_API_ACCESS_KEY": KEY,
        "CLEARML_API_SECRET_KEY": secret,
        "CLEARML_WORKER_ID": "bench-daemon",
    }
    command = [sys.executable, "-m", "clearml_core.cli.main", "agent", "daemon", "--queue", "idle"]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=variables)
    try:
        with open_control_plane(plane_url) as plane:
            wait_for(lambda: any(w.id == "bench-daemon" for w in plane.list_workers()), 120, "the daemon")
        time.sleep(2.0)  # past its start-up
        *on_server, on_daemon = cpu_share([*server.pids(), proc.pid], seconds)
        return sum(on_server), on_daemon
    finally:
        proc.terminate()
        proc.wait(60)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer tasks and samples, a 10 s idle window")
    parser.add_argument("--tasks", type=int, default=None, help="tasks per throughput run (default 2000)")
    parser.add_argument("--repeat", type=int, default=None, help="throughput runs per store (default 3)")
    parser.add_argument("--workers", type=int, default=2, help="the server's --workers (default 2)")
    parser.add_argument("--agent", nargs=7, help=argparse.SUPPRESS)
    parser.add_argument("--poll", type=float, default=5.0, help="the polling agent's interval (default 5 s)")
    parser.add_argument("--waiter", nargs=4, help=argparse.SUPPRESS)
    parser.add_argument("--poller", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.agent:
        agent(*args.agent)
        return 0
    if args.waiter:
        waiter(*args.waiter)
        return 0
    if args.poller:
        poller(*args.poller)
        return 0
    count = args.tasks or (1000 if args.quick else 2000)
    repeat = args.repeat or (1 if args.quick else 3)
    samples = 100 if args.quick else 300
    idle_seconds = 10.0 if args.quick else 30.0

    home = Path(tempfile.mkdtemp(prefix="clearml-server-bench-"))
    os.environ["HOME"] = str(home)
    for name in list(os.environ):
        if name.startswith(("CLEARML", "TRAINS")):
            os.environ.pop(name)
    env = dict(os.environ)
    secret = secrets.token_urlsafe(30)
    load_before = os.getloadavg()
    redis = RedisServer(home / "redis")
    redis.start()
    results: dict[str, dict[str, object]] = {}
    try:
        for store, plane_url in (
            ("sqlite", f"sqlite:///{home / 'server.db'}"),
            ("redis", redis.url("server-bench")),
        ):
            server = Server(home, plane_url, secret, env, args.workers)
            try:
                rates, duplicates, handed = [], 0, []
                for run in range(repeat):
                    rate, dups, distinct = throughput(
                        server, plane_url, secret, home / "work", count, env, str(run)
                    )
                    rates.append(rate)
                    duplicates += dups
                    handed.append(distinct)
                times = latency(server, plane_url, secret, samples, env)
                api_ms, direct_ms = overhead(server, plane_url, secret, samples)
                waiting = ["--waiter", server.url, secret, "idle-agent", "idle"]
                idle_server, idle_agent = idle_cpu(server, plane_url, waiting, idle_seconds, env)
                polling = ["--poller", server.url, secret, "idle-poller", queue_of("idle"), str(args.poll)]
                poll_server, poll_agent = idle_cpu(server, plane_url, polling, idle_seconds, env)
                daemon_server, daemon_self = idle_daemon(server, plane_url, secret, idle_seconds, env)
            finally:
                server.stop()
            results[store] = {
                "rates": rates,
                "duplicates": duplicates,
                "handed": handed,
                "times": times,
                "api_ms": api_ms,
                "direct_ms": direct_ms,
                "idle_server": idle_server,
                "idle_agent": idle_agent,
                "poll_server": poll_server,
                "poll_agent": poll_agent,
                "daemon_server": daemon_server,
                "daemon_self": daemon_self,
            }
    finally:
        redis.stop()
        load_after = os.getloadavg()
        shutil.rmtree(home, ignore_errors=True)

    def row_for(store: dict[str, object]) -> list[tuple[str, str, bool]]:
        rates: list[float] = store["rates"]  # type: ignore[assignment]
        times: list[float] = store["times"]  # type: ignore[assignment]
        api_ms, direct_ms = float(store["api_ms"]), float(store["direct_ms"])  # type: ignore[arg-type]
        idle = float(store["idle_server"]) + float(store["idle_agent"])  # type: ignore[arg-type]
        polling = float(store["poll_server"]) + float(store["poll_agent"])  # type: ignore[arg-type]
        daemon = float(store["daemon_server"]) + float(store["daemon_self"])  # type: ignore[arg-type]
        return [
            (
                f"{spread(rates)}/s, {store['duplicates']} dup.",
                f"≥ {THROUGHPUT_TARGET:,.0f}/s, 0 duplicates",
                statistics.median(rates) >= THROUGHPUT_TARGET
                and store["duplicates"] == 0
                and all(n == count for n in store["handed"]),  # type: ignore[attr-defined]
            ),
            (
                f"p99 {percentile(times, 0.99):.0f} ms (p50 {percentile(times, 0.5):.0f}, max {max(times):.0f})",
                f"p99 ≤ {P99_TARGET_MS:g} ms",
                percentile(times, 0.99) <= P99_TARGET_MS,
            ),
            (
                f"{api_ms - direct_ms:.2f} ms ({api_ms:.2f} through the API, {direct_ms:.2f} direct)",
                f"≤ {OVERHEAD_TARGET_MS:g} ms p50",
                api_ms - direct_ms <= OVERHEAD_TARGET_MS,
            ),
            (
                f"{idle:.2f}% (server {store['idle_server']:.2f}, agent {store['idle_agent']:.2f})",
                f"≤ {IDLE_TARGET_PERCENT:g}% of one core",
                idle <= IDLE_TARGET_PERCENT,
            ),
            (
                f"{polling:.2f}% (server {store['poll_server']:.2f}, agent {store['poll_agent']:.2f})",
                f"≤ {IDLE_TARGET_PERCENT:g}% of one core",
                polling <= IDLE_TARGET_PERCENT,
            ),
            (
                f"{daemon:.2f}% (server {store['daemon_server']:.2f}, daemon {store['daemon_self']:.2f})",
                f"≤ {IDLE_TARGET_PERCENT:g}% of one core",
                daemon <= IDLE_TARGET_PERCENT,
            ),
        ]

    checks = [
        f"dispatch, {AGENTS} agents, {count} tasks x{repeat}",
        f"enqueue → agent holds it, {AGENTS} clearml-core agents waiting (long poll), {samples} samples",
        f"API overhead per dispatch, p50 of {samples}",
        f"idle clearml-core agent waiting (long poll), {idle_seconds:.0f} s",
        f"idle agent polling get_next_task every {args.poll:g} s (as clearml-agent), {idle_seconds:.0f} s",
        f"idle clearml-core agent daemon (ClearML control plane, its defaults), {idle_seconds:.0f} s",
    ]
    sqlite_rows, redis_rows = row_for(results["sqlite"]), row_for(results["redis"])
    print(f"dispatch through clearml-core server, over SQLite and Redis{' (--quick)' if args.quick else ''}")
    print(
        f"python {platform.python_version()} on {platform.system()} {platform.machine()}, {os.cpu_count()} CPUs; "
        f"load average {load_before[0]:.2f} before, {load_after[0]:.2f} after (the machine may be shared); "
        f"server --workers {args.workers}; each dispatch is 3 calls: get_next_task, started, add_batch"
    )
    print()
    header = ("check", "sqlite", "redis", "target", "verdict")
    table = [header]
    passed = True
    for check, on_sqlite, on_redis in zip(checks, sqlite_rows, redis_rows, strict=True):
        ok = on_sqlite[2] and on_redis[2]
        passed = passed and ok
        table.append((check, on_sqlite[0], on_redis[0], on_sqlite[1], "PASS" if ok else "FAIL"))
    widths = [max(len(str(line[i])) for line in table) for i in range(len(header))]
    for line in table:
        print(
            "  ".join(
                str(cell).ljust(widths[i]) if i < len(header) - 1 else str(cell)
                for i, cell in enumerate(line)
            )
        )
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
