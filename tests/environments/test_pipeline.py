"""The agent's environment stage with real installs: cache hits, the record, failures, abort, kill -9."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import psutil
import pytest

from clearml_core.agent.execute import execute_task
from clearml_core.config import Config
from clearml_core.controlplane import ControlPlane, Requirements, Task, TaskStatus
from clearml_core.environments.cache import EnvironmentCache
from clearml_core.testing.packages import offline
from tests.agent.conftest import Daemons, Tasks, log_lines, wait_for
from tests.environments.conftest import ConfigFactory
from tests.environments.support import free_port, serving

PROBE = "import sys, tinypkg\nprint('value', tinypkg.VERSION, sys.prefix)\n"


def with_requirements(plane: ControlPlane, tasks: Tasks, script: str, lines: list[str], **fields) -> Task:  # type: ignore[no-untyped-def]
    task = tasks.create(script, **fields)
    return plane.update_task(task.id, requirements=Requirements(pip=lines))


def run(plane: ControlPlane, task: Task, config: Config):  # type: ignore[no-untyped-def]
    running = plane.start(task.id, "tester")
    return execute_task(plane, running, config=config, worker_id="tester")


def cache_of(config: Config) -> EnvironmentCache:
    cache = EnvironmentCache.from_config(config)
    assert cache is not None
    return cache


def test_a_task_runs_in_its_environment_and_the_second_hits_the_cache(
    plane: ControlPlane, tasks: Tasks, env_config: ConfigFactory, offline_index: Path
) -> None:
    config = env_config()
    first = with_requirements(plane, tasks, PROBE, ["tinypkg==1.0"])
    assert run(plane, first, config).status == TaskStatus.COMPLETED
    record = plane.get_task(first.id)
    env = record.runtime["environment"]
    assert env["source"] == "cache-build" and env["manager"] == "pip" and env["packages"] == 1
    assert Path(env["path"]).parent == cache_of(config).envs
    assert f"value 1.0 {env['path']}" in log_lines(plane, first.id)
    assert record.requirements.frozen == ["tinypkg==1.0"] and record.requirements.pip == ["tinypkg==1.0"]

    second = with_requirements(plane, tasks, PROBE, ["tinypkg==1.0"])
    assert run(plane, second, config).status == TaskStatus.COMPLETED
    again = plane.get_task(second.id)
    assert again.runtime["environment"]["source"] == "cache-hit"
    assert again.runtime["environment"]["path"] == env["path"]
    assert again.requirements.frozen == ["tinypkg==1.0"]
    lines = log_lines(plane, second.id)
    assert any("environment cache hit" in line for line in lines)
    assert not any(line.startswith("clearml-core: $ ") for line in lines)  # no installer ran
    assert [(e.complete, e.in_use) for e in cache_of(config).entries()] == [(True, False)]  # lease given back


def test_the_requirements_file_of_the_code_is_used(
    plane: ControlPlane, tasks: Tasks, env_config: ConfigFactory, offline_index: Path
) -> None:
    task = tasks.create("import beta; print('beta', beta.VERSION)")
    (Path(task.script.folder) / "requirements.txt").write_text("beta\n")
    assert run(plane, task, env_config()).status == TaskStatus.COMPLETED
    record = plane.get_task(task.id)
    assert "beta 1.0" in log_lines(plane, task.id)
    assert record.runtime["environment"]["summary"]["source"] == "requirements.txt"


def test_type_uv_builds_with_uv_semantics(
    plane: ControlPlane, tasks: Tasks, env_config: ConfigFactory, offline_index: Path
) -> None:
    config = env_config({"agent.package_manager.type": "uv"})
    task = with_requirements(plane, tasks, PROBE, ["alpha"])
    assert run(plane, task, config).status == TaskStatus.COMPLETED
    record = plane.get_task(task.id)
    assert record.runtime["environment"]["manager"] == "uv"
    assert record.requirements.frozen == ["alpha==1.0", "tinypkg==2.0"]


def test_a_bad_requirement_fails_its_task_and_the_daemon_serves_the_next(
    plane: ControlPlane,
    tasks: Tasks,
    daemons: Daemons,
    env_config: ConfigFactory,
    offline_index: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = env_config()
    monkeypatch.setenv("CLEARML_CONFIG_FILE", str(config.files[0]))
    plane.create_queue("envq")
    bad = with_requirements(plane, tasks, "print('never runs')", ["beta", "no-such-package-xyz"])
    good = with_requirements(plane, tasks, "import beta; print('beta imported')", ["beta"])
    for task in (bad, good):
        plane.enqueue(task.id, "envq")
    daemon = daemons.start("--queue", "envq", "--stop-when-empty")
    assert daemon.wait(300) == 0, daemons.output()
    failed, completed = plane.get_task(bad.id), plane.get_task(good.id)
    assert failed.status == TaskStatus.FAILED
    assert failed.status_reason.startswith("installing the task's requirements failed: ")
    assert "no-such-package-xyz" in failed.status_reason and "\n" not in failed.status_reason
    assert "never runs" not in log_lines(plane, bad.id)
    assert completed.status == TaskStatus.COMPLETED and "beta imported" in log_lines(plane, good.id)
    entries = cache_of(config).entries()
    assert [e.complete for e in entries] == [True]  # the failed build left nothing behind
    assert entries[0].metadata["frozen"] == ["beta==1.0"]


def test_an_unreachable_index_fails_the_task_with_the_reason(
    plane: ControlPlane, tasks: Tasks, env_config: ConfigFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    offline(monkeypatch, f"http://127.0.0.1:{free_port()}/simple")
    monkeypatch.setenv("UV_HTTP_RETRIES", "0")
    config = env_config()
    task = with_requirements(plane, tasks, "print('never runs')", ["beta"])
    assert run(plane, task, config).status == TaskStatus.FAILED
    reason = plane.get_task(task.id).status_reason
    assert reason.startswith("installing the task's requirements failed: ") and "127.0.0.1" in reason
    assert cache_of(config).entries() == []


def test_too_little_free_space_builds_a_private_environment_deleted_after(
    plane: ControlPlane, tasks: Tasks, env_config: ConfigFactory, offline_index: Path, tmp_path: Path
) -> None:
    config = env_config({"agent.venvs_cache.free_space_threshold_gb": 10**9})
    task = with_requirements(plane, tasks, PROBE, ["tinypkg==2.0"])
    assert run(plane, task, config).status == TaskStatus.COMPLETED
    env = plane.get_task(task.id).runtime["environment"]
    assert env["source"] == "private" and Path(env["path"]) == tmp_path / "venvs-builds" / f"task-{task.id}"
    assert f"value 2.0 {env['path']}" in log_lines(plane, task.id)
    assert not Path(env["path"]).exists()
    assert any("the cache has no room" in line for line in log_lines(plane, task.id))
    assert cache_of(config).entries() == []


@pytest.fixture
def small_disk(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A 1 MB tmpfs (root only; the test needs a disk that really fills up)."""
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True, check=False
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_fails_the_task_and_poisons_nothing(
    plane: ControlPlane, tasks: Tasks, env_config: ConfigFactory, offline_index: Path, small_disk: Path
) -> None:
    config = env_config(
        {"agent.venvs_cache.path": str(small_disk / "cache"), "agent.venvs_cache.free_space_threshold_gb": 0}
    )
    task = with_requirements(plane, tasks, "import big", ["big"])  # 2 MB on a 1 MB disk
    assert run(plane, task, config).status == TaskStatus.FAILED
    reason = plane.get_task(task.id).status_reason
    assert (
        reason.startswith("installing the task's requirements failed: ")
        and "No space left on device" in reason
    )
    cache = cache_of(config)
    assert cache.entries() == [] and cache.lookup(plane.get_task(task.id).id) is None
    small = with_requirements(plane, tasks, "import beta", ["beta"])
    assert run(plane, small, config).status == TaskStatus.COMPLETED  # the same cache still works


def _installer_processes(marker: str) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if any(marker in part for part in proc.info["cmdline"] or []):
                found.append(proc)
        except psutil.Error:
            continue
    return found


def test_aborting_a_task_during_its_build_stops_the_installer(
    plane: ControlPlane,
    tasks: Tasks,
    env_config: ConfigFactory,
    offline_index: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = env_config()
    with serving(offline_index) as server:
        offline(monkeypatch, server.url)
        server.hold()
        task = with_requirements(plane, tasks, "print('never runs')", ["beta"])
        box: dict[str, object] = {}
        thread = threading.Thread(target=lambda: box.setdefault("outcome", run(plane, task, config)))
        thread.start()
        assert server.waiting.wait(60), "the installer never asked for the wheel"
        plane.abort(task.id, reason="aborted by user")
        thread.join(30)
        assert not thread.is_alive()
    record = plane.get_task(task.id)
    assert record.status == TaskStatus.STOPPED and record.status_reason == "aborted by user"
    assert _installer_processes(str(cache_of(config).envs)) == []
    assert cache_of(config).entries() == []


def test_kill_9_of_the_agent_during_a_build_leaves_a_cache_that_works(
    plane: ControlPlane,
    tasks: Tasks,
    env_config: ConfigFactory,
    offline_index: Path,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    config = env_config()
    cache = cache_of(config)
    with serving(offline_index) as server:
        offline(monkeypatch, server.url)
        server.hold()
        task = with_requirements(plane, tasks, "import beta; print('beta imported')", ["beta"])
        agent = subprocess.Popen(
            [sys.executable, "-m", "clearml_core.cli.main", "agent", "execute", "--id", task.id, "--quiet"],
            env={**os.environ, "CLEARML_CONFIG_FILE": str(config.files[0])},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            assert server.waiting.wait(120), "the installer never asked for the wheel"
            installers = _installer_processes(str(cache.envs))
            assert installers, "no installer process found"
            agent.send_signal(signal.SIGKILL)
            agent.wait(10)
            # the installer dies with the agent (and with it the entry's lock)
            assert wait_for(
                lambda: not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in installers), 15
            )
        finally:
            if agent.poll() is None:
                agent.kill()
            server.release()
        # the half-built entry is not usable; its lock goes when the last process of the build is gone
        assert wait_for(lambda: [(e.complete, e.in_use) for e in cache.entries()] == [(False, False)], 15)
        again = with_requirements(plane, tasks, "import beta; print('beta imported')", ["beta"])
        assert run(plane, again, config).status == TaskStatus.COMPLETED
    assert plane.get_task(again.id).runtime["environment"]["source"] == "cache-build"
    assert [e.complete for e in cache.entries()] == [True]


def test_configuration_mistakes_fail_the_task_with_what_to_do(
    plane: ControlPlane, tasks: Tasks, env_config: ConfigFactory, offline_index: Path
) -> None:
    missing = with_requirements(plane, tasks, "print(1)", ["beta"])
    run(plane, missing, env_config({"agent.package_manager.type": "conda"}))
    reason = plane.get_task(missing.id).status_reason
    assert "no package manager named 'conda' is installed (installed: pip, " in reason  # and the plugins'
    assert (
        "clearml-core has no conda package manager yet: set agent.package_manager.type to pip or uv" in reason
    )
    nowhere = with_requirements(plane, tasks, "print(1)", ["beta"])
    run(plane, nowhere, env_config({"agent.python_binary": "no-such-python3.99"}))
    assert (
        "agent.python_binary 'no-such-python3.99' is not on PATH" in plane.get_task(nowhere.id).status_reason
    )


def _version(python: str) -> str:
    done = subprocess.run(
        [python, "-c", "import platform; print(platform.python_version())"],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.strip() if done.returncode == 0 else ""


def _another_python() -> str | None:
    """An interpreter of another version than this one (pyenv's others, the system's), if any."""
    current = ".".join(map(str, sys.version_info[:3]))
    candidates = sorted(str(p) for p in Path(sys.base_prefix).parent.glob("3.*/bin/python3"))
    candidates += [
        found
        for name in ("python3.12", "python3.13", "python3.10", "/usr/bin/python3")
        if (found := shutil.which(name))
    ]
    for candidate in candidates:
        version = _version(candidate)
        if version and version != current and version.startswith("3.") and int(version.split(".")[1]) >= 8:
            return candidate
    return None


def test_python_binary_chooses_the_interpreter(
    plane: ControlPlane, tasks: Tasks, env_config: ConfigFactory, offline_index: Path
) -> None:
    other = _another_python()
    if other is None:
        pytest.skip("only one Python version on this machine")
    script = "import sys, beta; print('version %d.%d' % sys.version_info[:2])"
    expected = ".".join(_version(other).split(".")[:2])
    task = with_requirements(plane, tasks, script, ["beta"])
    config = env_config({"agent.python_binary": other})
    assert run(plane, task, config).status == TaskStatus.COMPLETED, plane.get_task(task.id).status_reason
    assert f"version {expected}" in log_lines(plane, task.id)
    default = with_requirements(plane, tasks, script, ["beta"])
    run(plane, default, env_config())
    assert (
        plane.get_task(default.id).runtime["environment"]["key"]
        != plane.get_task(task.id).runtime["environment"]["key"]
    )
