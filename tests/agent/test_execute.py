"""Executing one task: the pipeline's stages, the process environment, outcomes in the record."""

from __future__ import annotations

import json
import os
import sys
import threading
import zipfile
from pathlib import Path

import pytest

from clearml_core.agent.execute import execute_task, task_dir
from clearml_core.agent.identity import state_dir
from clearml_core.agent.pipeline import Pipeline, TaskContext, TaskFailed, default_stages
from clearml_core.agent.stages.prepare_workdir import PrepareWorkdir
from clearml_core.agent.stages.run import RunEntryPoint, entry_point_argv
from clearml_core.controlplane import ControlPlane, Requirements, Script, Task, TaskStatus
from clearml_core.runners.local import LocalProcessEnvironment
from clearml_core.settings import load_config

from ..helpers import PATIENCE, time_bound
from .conftest import Tasks, log_lines, wait_for

ENV_DUMP = """
import json, os, sys
keys = ["CLEARML_TASK_ID", "CLEARML_WORKER_ID", "CLEARML_OUTPUT_DIR", "PYTHONUNBUFFERED",
        "CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES", "FROM_TASK", "FROM_CONF"]
print("ENV " + json.dumps({k: os.environ.get(k) for k in keys}))
print("ARGV " + json.dumps(sys.argv[1:]))
print("CWD " + os.getcwd())
"""


def run(plane: ControlPlane, task: Task, **kwargs):  # type: ignore[no-untyped-def]
    kwargs.setdefault("config", load_config())
    running = plane.start(task.id, "tester")
    return execute_task(plane, running, worker_id="tester", **kwargs)


def dumped(plane: ControlPlane, task_id: str, prefix: str):  # type: ignore[no-untyped-def]
    line = next(line for line in log_lines(plane, task_id) if line.startswith(prefix + " "))
    return json.loads(line[len(prefix) + 1 :]) if prefix != "CWD" else line[4:]


def test_a_completed_task(plane: ControlPlane, tasks: Tasks) -> None:
    task = tasks.create(ENV_DUMP, args=["--lr", "0.1"])
    outcome = run(plane, task)
    record = plane.get_task(task.id)
    assert outcome.status == record.status == TaskStatus.COMPLETED
    assert record.exit_code == 0 and record.status_reason == ""
    env = dumped(plane, task.id, "ENV")
    assert env["CLEARML_TASK_ID"] == task.id
    assert env["CLEARML_WORKER_ID"] == "tester"
    assert env["CLEARML_OUTPUT_DIR"] == str(task_dir(task.id) / "output")
    assert env["PYTHONUNBUFFERED"] == "1"
    assert dumped(plane, task.id, "ARGV") == ["--lr", "0.1"]
    assert dumped(plane, task.id, "CWD") == str(task_dir(task.id) / "code")
    assert any(line.startswith("ARGV") for line in record.last_log_lines)
    assert [stage["name"] for stage in record.runtime["stages"]] == [
        "prepare_workdir",
        "code",
        "environment",
        "run",
        "upload_outputs",
    ]
    log_file = Path(record.runtime["log_file"])
    assert "ARGV" in log_file.read_text()
    assert not (task_dir(task.id) / "code").exists()  # the copy of the code is gone


def test_a_failing_task_keeps_exit_code_and_last_lines(plane: ControlPlane, tasks: Tasks) -> None:
    task = tasks.create("print('about to fail')\n1 / 0\n")
    outcome = run(plane, task)
    record = plane.get_task(task.id)
    assert outcome.status == record.status == TaskStatus.FAILED
    assert record.exit_code == 1 and record.status_reason == "exit code 1"
    assert "about to fail" in record.last_log_lines
    assert any("ZeroDivisionError" in line for line in record.last_log_lines)


def test_an_exit_code_and_a_signal(plane: ControlPlane, tasks: Tasks) -> None:
    task = tasks.create("import sys; sys.exit(7)")
    run(plane, task)
    assert (plane.get_task(task.id).exit_code, plane.get_task(task.id).status_reason) == (7, "exit code 7")
    task = tasks.create("import os, signal; os.kill(os.getpid(), signal.SIGKILL)")
    run(plane, task)
    record = plane.get_task(task.id)
    assert record.status == TaskStatus.FAILED and record.status_reason == "the process was killed by SIGKILL"


def test_timeout_stops_the_task_with_its_reason(plane: ControlPlane, tasks: Tasks) -> None:
    # The timeout counts from the start of the process: on a busy machine the interpreter may not
    # reach the task's first line within 1 s. Such a run still has to time out, but says nothing
    # about keeping the task's output, so it is tried again with twice the timeout.
    timeout = 1.0
    while True:
        task = tasks.create("import time\nprint('working', flush=True)\ntime.sleep(120)\n", timeout=timeout)
        outcome = run(plane, task)
        record = plane.get_task(task.id)
        assert outcome.status == record.status == TaskStatus.FAILED
        assert record.status_reason.startswith(
            f"timeout: the task ran longer than its timeout of {timeout:g} s"
        )
        if "working" in record.last_log_lines or timeout >= 32:
            break
        timeout *= 2
    assert "working" in record.last_log_lines


def test_abort_from_another_process_stops_the_task(plane: ControlPlane, tasks: Tasks) -> None:
    task = tasks.create(
        "import subprocess, time\nsubprocess.Popen(['sleep', '300'])\nprint('ready', flush=True)\ntime.sleep(300)\n"
    )
    box: dict[str, object] = {}
    thread = threading.Thread(target=lambda: box.setdefault("outcome", run(plane, task)))
    thread.start()
    assert wait_for(lambda: "ready" in log_lines(plane, task.id))
    requested = plane.abort(task.id, reason="aborted by user")
    assert wait_for(lambda: plane.get_task(task.id).status == TaskStatus.STOPPED)
    thread.join(PATIENCE)
    record = plane.get_task(task.id)
    # an abort stops a running task within 2 s: from the abort to the stop, as the plane recorded both
    assert requested.last_update is not None and record.ended is not None
    assert record.ended - requested.last_update < time_bound(2.0)
    assert record.status_reason == "aborted by user"
    assert "ready" in record.last_log_lines


def test_gpu_pinning_and_cpu_only(plane: ControlPlane, tasks: Tasks) -> None:
    task = tasks.create(ENV_DUMP)
    run(plane, task, gpus=["1", "3"])
    env = dumped(plane, task.id, "ENV")
    assert (env["CUDA_VISIBLE_DEVICES"], env["NVIDIA_VISIBLE_DEVICES"]) == ("1,3", "1,3")
    task = tasks.create(ENV_DUMP)
    run(plane, task, gpus=[])
    env = dumped(plane, task.id, "ENV")
    assert (env["CUDA_VISIBLE_DEVICES"], env["NVIDIA_VISIBLE_DEVICES"]) == ("", "none")


def test_task_environment_needs_enable_task_env(
    plane: ControlPlane, tasks: Tasks, clearml_conf: Path
) -> None:
    clearml_conf.write_text('environment { FROM_CONF: "conf" }\n')
    task = tasks.create(ENV_DUMP, env={"FROM_TASK": "yes", "CLEARML_TASK_ID": "spoofed"})
    run(plane, task)
    env = dumped(plane, task.id, "ENV")
    assert env["FROM_TASK"] is None and env["FROM_CONF"] == "conf"
    assert any("agent.enable_task_env" in line for line in log_lines(plane, task.id))

    clearml_conf.write_text(
        'agent.enable_task_env: true\nagent.apply_environment: false\nenvironment { FROM_CONF: "conf" }\n'
    )
    task = tasks.create(ENV_DUMP, env={"FROM_TASK": "yes", "CLEARML_TASK_ID": "spoofed"})
    run(plane, task)
    env = dumped(plane, task.id, "ENV")
    assert env["FROM_TASK"] == "yes" and env["FROM_CONF"] is None
    assert env["CLEARML_TASK_ID"] == task.id  # the agent's own variables win


def test_outputs_stay_local_without_an_output_uri(plane: ControlPlane, tasks: Tasks) -> None:
    script = "import os, pathlib\nout = pathlib.Path(os.environ['CLEARML_OUTPUT_DIR'])\n(out / 'sub').mkdir()\n(out / 'sub' / 'model.bin').write_bytes(b'weights')\n"
    task = tasks.create(script)
    run(plane, task)
    record = plane.get_task(task.id)
    kept = state_dir() / "outputs" / task.id
    assert record.runtime["outputs"] == {"uri": kept.as_uri(), "files": ["sub/model.bin"]}
    assert (kept / "sub" / "model.bin").read_bytes() == b"weights"


def test_outputs_upload_to_the_output_uri(plane: ControlPlane, tasks: Tasks, tmp_path: Path) -> None:
    script = (
        "import os, pathlib\n(pathlib.Path(os.environ['CLEARML_OUTPUT_DIR']) / 'm.txt').write_text('hi')\n"
    )
    target = tmp_path / "bucket"
    task = tasks.create(script, name="train it", output_uri=target.as_uri(), project="demo")
    run(plane, task)
    record = plane.get_task(task.id)
    assert record.status == TaskStatus.COMPLETED, record.status_reason
    uploaded = target / "demo" / f"train_it.{task.id}" / "output" / "m.txt"
    assert uploaded.read_text() == "hi"
    assert record.runtime["outputs"]["uri"].endswith(f"train_it.{task.id}/output")


def test_outputs_go_to_the_default_output_uri(
    plane: ControlPlane, tasks: Tasks, tmp_path: Path, clearml_conf: Path
) -> None:
    target = tmp_path / "default-bucket"
    clearml_conf.write_text(f'sdk.development.default_output_uri: "{target.as_uri()}"\n')
    script = (
        "import os, pathlib\n(pathlib.Path(os.environ['CLEARML_OUTPUT_DIR']) / 'r.json').write_text('{}')\n"
    )
    task = tasks.create(script, name="n")
    run(plane, task)
    assert (target / "default" / f"n.{task.id}" / "output" / "r.json").read_text() == "{}"
    assert not (task_dir(task.id) / "output").exists()


def test_an_upload_that_fails_fails_the_task(plane: ControlPlane, tasks: Tasks) -> None:
    script = "import os, pathlib\n(pathlib.Path(os.environ['CLEARML_OUTPUT_DIR']) / 'x').write_text('1')\n"
    task = tasks.create(script, output_uri="nosuchscheme://bucket/path")
    run(plane, task)
    record = plane.get_task(task.id)
    assert record.status == TaskStatus.FAILED
    assert record.status_reason.startswith("uploading the outputs to nosuchscheme://bucket/path/")
    assert record.exit_code == 0


def test_a_missing_folder_or_entry_point_fails_with_a_reason(
    plane: ControlPlane, tasks: Tasks, tmp_path: Path
) -> None:
    task = plane.create_task(
        Task(name="gone", script=Script(folder=str(tmp_path / "nowhere"), entry_point="x.py"))
    )
    run(plane, task)
    record = plane.get_task(task.id)
    assert record.status == TaskStatus.FAILED and "does not exist on this machine" in record.status_reason
    task = tasks.create("print(1)")
    plane.update_task(task.id, script=Script(folder=task.script.folder, entry_point="other.py"))
    run(plane, plane.get_task(task.id))
    assert "the entry point other.py does not exist" in plane.get_task(task.id).status_reason


def test_a_git_task_without_a_git_stage_says_so(plane: ControlPlane) -> None:
    task = plane.create_task(
        Task(name="g", script=Script(repository="https://example.com/r.git", entry_point="t.py"))
    )
    run(plane, task, stages=[stage for stage in default_stages() if stage.name != "code"])
    assert "no stage that checks repositories out" in plane.get_task(task.id).status_reason


def test_a_crashing_stage_leaves_a_clear_reason_and_its_traceback(plane: ControlPlane, tasks: Tasks) -> None:
    class Broken:
        name = "broken"

        def run(self, ctx: TaskContext) -> None:
            raise RuntimeError("boom")

    task = tasks.create("print(1)")
    run(plane, task, stages=[PrepareWorkdir(), Broken(), RunEntryPoint()])
    record = plane.get_task(task.id)
    assert record.status == TaskStatus.FAILED
    assert record.status_reason == "internal error of the agent: RuntimeError: boom"
    assert any("Traceback" in line for line in log_lines(plane, task.id))
    assert [s["outcome"] for s in record.runtime["stages"]] == ["ok", "error"]


def test_stages_share_the_context_and_can_be_replaced(plane: ControlPlane, tasks: Tasks) -> None:
    seen: list[str] = []

    class Announce:
        name = "announce"

        def run(self, ctx: TaskContext) -> None:
            ctx.state["greeting"] = "hi"
            ctx.env["FROM_TASK"] = "set by a stage"

        def cleanup(self, ctx: TaskContext) -> None:
            seen.append("cleanup")

    class FixedInterpreter:
        name = "environment"

        def run(self, ctx: TaskContext) -> None:
            ctx.python = sys.executable
            seen.append(ctx.state["greeting"])

    pipeline = (
        Pipeline(default_stages())
        .insert_after("prepare_workdir", Announce())
        .replace("environment", FixedInterpreter())
    )
    assert pipeline.names == ["prepare_workdir", "announce", "code", "environment", "run", "upload_outputs"]
    with pytest.raises(ValueError, match="two pipeline stages"):
        Pipeline(default_stages()).insert_before("run", FixedInterpreter())
    with pytest.raises(KeyError):
        Pipeline(default_stages()).replace("git", Announce())
    task = tasks.create(ENV_DUMP)
    run(plane, task, stages=pipeline.stages)
    assert seen == ["hi", "cleanup"]
    assert dumped(plane, task.id, "ENV")["FROM_TASK"] == "set by a stage"


def test_an_execution_environment_may_reshape_the_pipeline(plane: ControlPlane, tasks: Tasks) -> None:
    class EchoEnvironment(LocalProcessEnvironment):
        name = "echo"

        def stages(self, stages):  # type: ignore[no-untyped-def]
            return [stage for stage in stages if stage.name != "upload_outputs"]

    task = tasks.create(
        "import os, pathlib\n(pathlib.Path(os.environ['CLEARML_OUTPUT_DIR']) / 'x').write_text('1')\n"
    )
    run(plane, task, environment=EchoEnvironment())
    record = plane.get_task(task.id)
    assert [s["name"] for s in record.runtime["stages"]] == ["prepare_workdir", "code", "environment", "run"]
    assert record.runtime["execution_environment"] == "echo"
    assert "outputs" not in record.runtime


def test_entry_points(tmp_path: Path) -> None:
    (tmp_path / "train.py").write_text("")
    (tmp_path / "run.sh").write_text("echo hi")
    tool = tmp_path / "tool"
    tool.write_text("#!/bin/sh\necho hi\n")
    tool.chmod(0o755)
    assert entry_point_argv("py", "train.py", ["-x"], tmp_path) == ["py", str(tmp_path / "train.py"), "-x"]
    assert entry_point_argv("py", "-m pkg.mod", ["a"], tmp_path) == ["py", "-m", "pkg.mod", "a"]
    assert entry_point_argv("py", "run.sh", [], tmp_path) == ["bash", str(tmp_path / "run.sh")]
    assert entry_point_argv("py", "tool", [], tmp_path) == [str(tool)]
    with pytest.raises(TaskFailed, match="no entry point"):
        entry_point_argv("py", " ", [], tmp_path)


def _tiny_wheel(folder: Path) -> Path:
    wheel = folder / "tinypkg-1.0-py3-none-any.whl"
    files = {
        "tinypkg/__init__.py": "VALUE = 42\n",
        "tinypkg-1.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: tinypkg\nVersion: 1.0\n",
        "tinypkg-1.0.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = "".join(f"{name},,\n" for name in files) + "tinypkg-1.0.dist-info/RECORD,,\n"
    with zipfile.ZipFile(wheel, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
        archive.writestr("tinypkg-1.0.dist-info/RECORD", record)
    return wheel


def test_requirements_get_a_virtual_environment(plane: ControlPlane, tasks: Tasks, tmp_path: Path) -> None:
    wheel = _tiny_wheel(tmp_path)
    task = tasks.create("import sys, tinypkg\nprint('value', tinypkg.VALUE, sys.prefix)\n")
    plane.update_task(task.id, requirements=Requirements(pip=[str(wheel)]))
    run(plane, plane.get_task(task.id))
    record = plane.get_task(task.id)
    assert record.status == TaskStatus.COMPLETED, record.last_log_lines
    line = next(line for line in log_lines(plane, task.id) if line.startswith("value"))
    assert line.split()[1] == "42" and line.split()[2] == record.runtime["environment"]["path"]
    assert f"tinypkg @ {wheel.as_uri()}" in record.requirements.frozen  # more in tests/environments/


def test_a_requirement_that_cannot_install_fails_the_task(
    plane: ControlPlane, tasks: Tasks, tmp_path: Path
) -> None:
    task = tasks.create("print('never runs')")
    plane.update_task(
        task.id, requirements=Requirements(pip=[str(tmp_path / "missing-1.0-py3-none-any.whl")])
    )
    run(plane, plane.get_task(task.id))
    record = plane.get_task(task.id)
    assert record.status == TaskStatus.FAILED
    assert record.status_reason.startswith("installing the task's requirements failed: ")
    assert "missing-1.0-py3-none-any.whl" in record.status_reason
    assert "never runs" not in log_lines(plane, task.id)


def test_a_task_taken_away_meanwhile_is_not_overwritten(
    plane: ControlPlane, tasks: Tasks, tmp_path: Path
) -> None:
    plane.create_queue("q")
    release = tmp_path / "release"
    task = tasks.create(
        f"import pathlib, time\nprint('ready', flush=True)\n"
        f"while not pathlib.Path({str(release)!r}).exists():\n    time.sleep(0.02)\n",
        queue="q",
    )
    running = plane.pop(["q"], "tester")
    assert running is not None
    box: dict[str, object] = {}
    thread = threading.Thread(
        target=lambda: box.setdefault(
            "o", execute_task(plane, running, config=load_config(), worker_id="tester")
        )
    )
    thread.start()
    assert wait_for(lambda: "ready" in log_lines(plane, task.id))  # the task runs
    plane.requeue(task.id, reason="the watchdog gave it away")
    release.touch()
    thread.join(PATIENCE)
    outcome = box["o"]
    assert not outcome.recorded  # type: ignore[attr-defined]
    assert plane.get_task(task.id).status == TaskStatus.QUEUED
    assert os.path.exists(task_dir(task.id) / "task.log")


def test_a_script_kept_in_the_task_runs_as_its_entry_point(plane: ControlPlane) -> None:
    """ClearML's SDK records a script outside a repository as ``script.diff``; it runs as its entry point."""
    script = Script(entry_point="hello.py", working_dir="jobs", diff="print('from the record', 6 * 7)\n")
    task = plane.create_task(Task(name="literal", script=script))
    outcome = run(plane, task)
    assert outcome.status == TaskStatus.COMPLETED, plane.get_task(task.id).status_reason
    assert "from the record 42" in log_lines(plane, task.id)
    escaping = plane.create_task(
        Task(name="escaping", script=Script(entry_point="../../x.py", diff="print('no')\n"))
    )
    assert run(plane, escaping).status == TaskStatus.FAILED
    assert "outside its code" in plane.get_task(escaping.id).status_reason
