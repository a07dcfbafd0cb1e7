"""The built-in ``venv`` runner: real processes, their output, and stopping whole process trees."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from clearml_core.runners.base import ExecutionError, LaunchSpec, load_environment
from clearml_core.runners.local import LocalProcessEnvironment
from clearml_core.runners.output import BatchingSink, LineReader, MemorySink, collapse_carriage_returns

from ..helpers import time_bound, wait_for

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="process trees are Linux here")

# A task that starts two helpers, one of which leaves the process group, writes their pids, then
# waits; with IGNORE_TERM it also shrugs off SIGTERM, so only SIGKILL stops it.
FAMILY = textwrap.dedent(
    """
    import os, signal, subprocess, sys, time
    if os.environ.get("IGNORE_TERM"):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    same_group = subprocess.Popen(["sleep", "300"])
    own_session = subprocess.Popen(["sleep", "300"], start_new_session=True)
    with open(sys.argv[1], "w") as f:
        f.write(f"{os.getpid()} {same_group.pid} {own_session.pid}")
    print("ready", flush=True)
    time.sleep(300)
    """
)


def spec(argv: list[str], cwd: Path, **env: str) -> LaunchSpec:
    return LaunchSpec(argv=argv, cwd=cwd, env={**os.environ, **env})


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def read_pids(path: Path) -> list[int]:
    assert wait_for(lambda: path.exists() and len(path.read_text().split()) == 3)
    return [int(p) for p in path.read_text().split()]


def test_the_venv_environment_is_registered() -> None:
    assert isinstance(load_environment("venv"), LocalProcessEnvironment)


def test_output_lines_and_exit_code(tmp_path: Path) -> None:
    sink = MemorySink()
    code = "import sys\nprint('one')\nprint('two', file=sys.stderr)\nprint('three')\nsys.exit(4)"
    execution = LocalProcessEnvironment().start(spec([sys.executable, "-c", code], tmp_path), sink)
    assert execution.wait(30) == 4
    assert [line for stream, line in sink.lines if stream == "stdout"] == ["one", "three"]
    assert [line for stream, line in sink.lines if stream == "stderr"] == ["two"]
    assert execution.poll() == 4


def test_death_by_signal_is_a_negative_code(tmp_path: Path) -> None:
    code = "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)"
    execution = LocalProcessEnvironment().start(spec([sys.executable, "-c", code], tmp_path), MemorySink())
    assert execution.wait(30) == -signal.SIGSEGV


def test_a_command_that_does_not_exist(tmp_path: Path) -> None:
    sink = MemorySink()
    execution = LocalProcessEnvironment().start(spec(["no-such-program-here"], tmp_path), sink)
    assert execution.wait(30) == 127
    assert any("cannot start no-such-program-here" in line for line in sink.texts())


def test_a_container_image_is_refused_not_ignored(tmp_path: Path) -> None:
    with pytest.raises(ExecutionError, match="--docker"):
        LocalProcessEnvironment().start(
            LaunchSpec(argv=["true"], cwd=tmp_path, env=dict(os.environ), image="python:3.12"), MemorySink()
        )


@pytest.mark.parametrize("ignore_term", [False, True])
def test_abort_stops_the_whole_tree_within_two_seconds(tmp_path: Path, ignore_term: bool) -> None:
    pids_file = tmp_path / "pids"
    env = {"IGNORE_TERM": "1"} if ignore_term else {}
    execution = LocalProcessEnvironment().start(
        spec([sys.executable, "-c", FAMILY, str(pids_file)], tmp_path, **env), MemorySink()
    )
    pids = read_pids(pids_file)
    assert all(alive(pid) for pid in pids)
    began = time.monotonic()
    code = execution.abort(grace=1.0)
    took = time.monotonic() - began
    assert not any(alive(pid) for pid in pids)
    assert took < time_bound(2.0)  # the whole tree is gone within 2 s of the abort, a 1 s grace included
    assert code == (-signal.SIGKILL if ignore_term else -signal.SIGTERM)


def test_processes_a_finished_task_left_behind_are_stopped(tmp_path: Path) -> None:
    pid_file = tmp_path / "bg"
    code = f"import subprocess; p = subprocess.Popen(['sleep', '300'], start_new_session=True); open({str(pid_file)!r}, 'w').write(str(p.pid))"
    execution = LocalProcessEnvironment().start(spec([sys.executable, "-c", code], tmp_path), MemorySink())
    assert execution.wait(30) == 0
    background = int(pid_file.read_text())
    assert wait_for(lambda: not alive(background))


AGENT = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    from clearml_core.runners.base import LaunchSpec
    from clearml_core.runners.local import LocalProcessEnvironment
    from clearml_core.runners.output import MemorySink
    family, pids = sys.argv[1], sys.argv[2]
    LocalProcessEnvironment().start(
        LaunchSpec(argv=[sys.executable, "-c", family, pids], cwd=Path(pids).parent, env=dict(os.environ)),
        MemorySink(),
    )
    time.sleep(300)
    """
)


def test_kill_9_of_the_agent_takes_the_task_tree_with_it(tmp_path: Path) -> None:
    pids_file = tmp_path / "pids"
    agent = subprocess.Popen([sys.executable, "-c", AGENT, FAMILY, str(pids_file)])
    try:
        pids = read_pids(pids_file)
        assert all(alive(pid) for pid in pids)
        agent.kill()
        agent.wait()
        assert wait_for(lambda: not any(alive(pid) for pid in pids)), [p for p in pids if alive(p)]
    finally:
        if agent.poll() is None:
            agent.kill()


def test_progress_bars_keep_their_last_frame() -> None:
    assert collapse_carriage_returns("10%\r50%\r100%") == "100%"
    assert collapse_carriage_returns("done\r") == "done"
    assert collapse_carriage_returns("plain") == "plain"


def test_line_reader_splits_redraws_and_long_lines() -> None:
    payload = b"a\r\nb\rc\n" + b"x" * 70000 + b"\nno newline at the end"
    read_end, write_end = os.pipe()
    lines: list[tuple[str, str]] = []
    reader = LineReader({"stdout": os.fdopen(read_end, "rb")}, lambda s, t: lines.append((s, t)))
    reader.start()
    with os.fdopen(write_end, "wb") as writer:
        for start in range(0, len(payload), 4096):  # arrives in pieces, as from a process
            writer.write(payload[start : start + 4096])
            writer.flush()
    reader.join(10)
    texts = [t for _s, t in lines]
    assert texts[:2] == ["a", "c"]
    assert "".join(texts[2:4]) == "x" * 70000 and len(texts[2]) == 65536
    assert texts[-1] == "no newline at the end"


def test_batching_sink_delivers_in_batches_and_keeps_lines_when_delivery_fails() -> None:
    delivered: list[list[str]] = []
    failures = [RuntimeError("plane busy")]

    def deliver(batch):  # type: ignore[no-untyped-def]
        if failures:
            raise failures.pop()
        delivered.append([line.text for line in batch])

    sink = BatchingSink(deliver, interval=0.05, max_batch=1000)
    for index in range(10):
        sink.write("stdout", str(index))
    assert wait_for(lambda: sum(map(len, delivered)) == 10)
    sink.write("stderr", "last")
    sink.close()
    assert [line for batch in delivered for line in batch] == [str(i) for i in range(10)] + ["last"]
    sink.write("stdout", "after close is dropped")
    assert [line for batch in delivered for line in batch][-1] == "last"
