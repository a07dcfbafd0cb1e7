"""The first process of every local task: it keeps the task's whole process tree tied to the agent.

Run as ``python -I -S _supervisor.py AGENT_PID COMMAND...`` (standard library only, so it starts in
a few milliseconds from any interpreter). The agent starts it as the leader of a new session with
``PR_SET_PDEATHSIG`` (SIGHUP) and ``PR_SET_CHILD_SUBREAPER`` already set, so:

* when the agent dies, even by ``kill -9``, the kernel sends SIGHUP here and this process kills every
  descendant of the task, including processes that left the process group or double-forked (as a
  subreaper, orphans of the task are re-parented to it, not to init);
* the agent's SIGTERM to the process group reaches the task; this process ignores it and simply
  reports the task's exit when it comes;
* when the task's main process exits, background processes it left behind are stopped, and this
  process exits with the task's exit code (or dies of the task's signal), so the agent sees the
  task's own result.
"""

from __future__ import annotations

import os
import signal
import sys
import time

PARENT_DEATH_SIGNAL = signal.SIGHUP


def _descendants(root: int) -> list[int]:
    """Every live descendant of ``root``, read from /proc (Linux); empty elsewhere."""
    children: dict[int, list[int]] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return []
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                stat = handle.read()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2 :].split()
        if len(fields) > 1:
            children.setdefault(int(fields[1]), []).append(int(entry))
    found: list[int] = []
    pending = [root]
    while pending:
        for child in children.get(pending.pop(), ()):
            found.append(child)
            pending.append(child)
    return found


def _signal_all(pids: list[int], signum: int) -> None:
    for pid in pids:
        try:  # noqa: SIM105  (contextlib would cost start-up time here)
            os.kill(pid, signum)
        except OSError:
            pass


def _kill_everything() -> None:
    _signal_all(_descendants(os.getpid()), signal.SIGKILL)
    try:
        os.killpg(0, signal.SIGKILL)  # the rest of the group, this process included
    finally:
        os._exit(137)


def _reap(block: bool) -> list[tuple[int, int]]:
    reaped: list[tuple[int, int]] = []
    while True:
        try:
            pid, status = os.waitpid(-1, 0 if block else os.WNOHANG)
        except ChildProcessError:
            return reaped
        if pid == 0:
            return reaped
        reaped.append((pid, status))
        if block:
            return reaped


def _stop_leftovers(grace: float) -> None:
    """The task is over: processes it left running get SIGTERM, then SIGKILL after ``grace``."""
    leftovers = _descendants(os.getpid())
    if not leftovers:
        return
    _signal_all(leftovers, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        _reap(block=False)
        if not _descendants(os.getpid()):
            return
        time.sleep(0.02)
    _signal_all(_descendants(os.getpid()), signal.SIGKILL)
    _reap(block=False)


def main(argv: list[str]) -> None:
    agent_pid = int(argv[1])
    command = argv[2:]

    def on_parent_death(_signum: int, _frame: object) -> None:
        if os.getppid() != agent_pid:
            _kill_everything()

    signal.signal(PARENT_DEATH_SIGNAL, on_parent_death)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if os.getppid() != agent_pid:  # the agent died before the death signal was armed
        _kill_everything()

    child = os.fork()
    if child == 0:
        for signum in (PARENT_DEATH_SIGNAL, signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, signal.SIG_DFL)
        try:
            os.execvp(command[0], command)  # noqa: S606  (the task's own argv)
        except OSError as error:
            os.write(2, f"cannot start {command[0]}: {error.strerror}\n".encode())
        os._exit(127)

    status = None
    while status is None:
        for pid, raw in _reap(block=True):
            if pid == child:
                status = raw
    _stop_leftovers(grace=0.5)
    code = os.waitstatus_to_exitcode(status)
    sys.stdout.flush()
    if code < 0:  # die of the same signal, so the agent sees what the task saw
        try:  # noqa: SIM105
            signal.signal(-code, signal.SIG_DFL)
        except (OSError, ValueError):  # SIGKILL / SIGSTOP have no handler to reset
            pass
        os.kill(os.getpid(), -code)
        time.sleep(1)
        os._exit(128 - code)
    os._exit(code)


if __name__ == "__main__":
    main(sys.argv)
