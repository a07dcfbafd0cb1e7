"""The ``code`` stage inside the agent: git tasks run, fail with one clear reason, keep secrets out
of records and logs, and daemons share one mirror safely."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from clearml_core.agent.execute import execute_task
from clearml_core.controlplane import ControlPlane, Script, Task, TaskStatus, open_control_plane
from clearml_core.settings import load_config
from clearml_core.tasks import create_task

from .conftest import HttpGit, Repos, git, serve

SCRIPT = """\
import os, subprocess, sys
print("version", open("version.txt").read().strip())
print("commit", subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip())
print("cwd", os.getcwd())
"""


@pytest.fixture
def plane(clearml_home: Path):  # type: ignore[no-untyped-def]
    with open_control_plane() as opened:
        yield opened


def run(plane: ControlPlane, task: Task):  # type: ignore[no-untyped-def]
    running = plane.start(task.id, "tester")
    return execute_task(plane, running, worker_id="tester", config=load_config())


def lines(plane: ControlPlane, task_id: str) -> list[str]:
    return [line for event in plane.read_logs(task_id) for line in event.lines]


@pytest.fixture
def project(repos: Repos) -> Path:
    return repos.create("project", {"run.py": SCRIPT, "version.txt": "one\n", "pkg/__init__.py": ""})


def test_a_task_from_a_local_working_copy_runs_what_is_on_disk(
    plane: ControlPlane, tmp_path: Path, project: Path
) -> None:
    work = tmp_path / "work"
    git("clone", "-q", str(project), str(work))
    (work / "version.txt").write_text("uncommitted\n")
    task = create_task("wc", repo=str(work), script="run.py", plane=plane)
    outcome = run(plane, task)
    record = plane.get_task(task.id)
    assert outcome.status == TaskStatus.COMPLETED, record.status_reason
    output = lines(plane, task.id)
    assert "version uncommitted" in output
    assert f"commit {git('rev-parse', 'HEAD', cwd=project)}" in output
    code = record.runtime["code"]
    assert code["commit"] == git("rev-parse", "HEAD", cwd=project)
    assert code["diff_applied"] and code["vcs_cache"] and code["branch"] == "main"
    assert [s["name"] for s in record.runtime["stages"]][:3] == ["prepare_workdir", "code", "environment"]
    assert any(line.startswith("clearml-core: code: ") for line in output)


def test_the_second_run_of_a_commit_needs_no_fetch(plane: ControlPlane, project: Path) -> None:
    commit = git("rev-parse", "HEAD", cwd=project)
    script = Script(repository=project.as_uri(), commit=commit, entry_point="run.py")
    first = plane.create_task(Task(name="a", script=script))
    second = plane.create_task(Task(name="b", script=script))
    run(plane, first)
    run(plane, second)
    assert plane.get_task(first.id).runtime["code"]["fetched"] is True
    assert plane.get_task(second.id).runtime["code"]["fetched"] is False
    assert plane.get_task(second.id).status == TaskStatus.COMPLETED


@pytest.mark.parametrize(
    ("script", "reason"),
    [
        (Script(repository="file:///nonexistent/repo.git", entry_point="run.py"), "does not exist"),
        (Script(repository="{project}", commit="0" * 40, entry_point="run.py"), "is not in"),
        (Script(repository="{project}", branch="gone", entry_point="run.py"), "branch gone is not in"),
        (
            Script(
                repository="{project}", entry_point="run.py", diff="--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n+b\n"
            ),
            "do not apply",
        ),
    ],
    ids=["missing-repo", "gone-commit", "gone-branch", "bad-diff"],
)
def test_failures_have_one_clear_reason(
    plane: ControlPlane, project: Path, script: Script, reason: str
) -> None:
    script.repository = script.repository.replace("{project}", project.as_uri())
    task = plane.create_task(Task(name="bad", script=script))
    outcome = run(plane, task)
    record = plane.get_task(task.id)
    assert outcome.status == record.status == TaskStatus.FAILED
    assert reason in record.status_reason
    assert "internal error" not in record.status_reason and "Traceback" not in "\n".join(
        lines(plane, task.id)
    )
    assert [s["outcome"] for s in record.runtime["stages"]][-1] == "failed"


def test_secrets_stay_out_of_records_and_logs(
    plane: ControlPlane, clearml_conf: Path, repos: Repos, project: Path, http_git: HttpGit
) -> None:
    serve(repos, project, http_git.root, "project.git")
    url = http_git.url("project.git")
    good = plane.create_task(Task(name="good", script=Script(repository=url, entry_point="run.py")))
    clearml_conf.write_text(f'agent {{ git_user: alice, git_pass: "{http_git.password}" }}')
    assert run(plane, good).status == TaskStatus.COMPLETED
    clearml_conf.write_text('agent { git_user: alice, git_pass: "Wrong-Secret-42" }')
    bad = plane.create_task(Task(name="bad", script=Script(repository=url, entry_point="run.py")))
    assert run(plane, bad).status == TaskStatus.FAILED
    assert "authentication failed (user 'alice')" in plane.get_task(bad.id).status_reason
    for task in (good, bad):
        record = json.dumps(plane.get_task(task.id).to_dict())
        log = "\n".join(lines(plane, task.id))
        log_file = Path(plane.get_task(task.id).runtime["log_file"]).read_text()
        for secret in (http_git.password, "Wrong-Secret-42"):
            assert secret not in record and secret not in log and secret not in log_file


def test_a_daemon_keeps_serving_after_git_failures(
    plane: ControlPlane, tmp_path: Path, project: Path
) -> None:
    plane.create_queue("git")
    bad = plane.create_task(
        Task(name="bad", script=Script(repository=(tmp_path / "nope").as_uri(), entry_point="run.py"))
    )
    good = plane.create_task(
        Task(name="good", script=Script(repository=project.as_uri(), entry_point="run.py"))
    )
    plane.enqueue(bad.id, "git")
    plane.enqueue(good.id, "git")
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "clearml_core.cli.main",
            "agent",
            "daemon",
            "--queue",
            "git",
            "--stop-when-empty",
        ],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert plane.get_task(bad.id).status == TaskStatus.FAILED
    assert "does not exist" in plane.get_task(bad.id).status_reason
    assert plane.get_task(good.id).status == TaskStatus.COMPLETED


CONCURRENT = """\
import json, sys, time
from pathlib import Path
from clearml_core.vcs.auth import GitAuth
from clearml_core.vcs.checkout import Checkout
url, cache, dest, go = sys.argv[1:5]
while not Path(go).exists():
    time.sleep(0.01)
result = Checkout(GitAuth(), cache_root=Path(cache)).run(url, Path(dest), branch="main")
print(json.dumps(result.to_dict()))
"""


def test_concurrent_processes_share_one_mirror(tmp_path: Path, repos: Repos) -> None:
    big = {f"data/file{i}.txt": f"{i}\n" * 200 for i in range(200)}
    project = repos.create("shared", {"run.py": "print(1)\n", **big})
    script = tmp_path / "concurrent.py"
    script.write_text(textwrap.dedent(CONCURRENT))
    go = tmp_path / "go"
    cache = tmp_path / "cache"
    workers = [
        subprocess.Popen(
            [sys.executable, str(script), project.as_uri(), str(cache), str(tmp_path / f"code{i}"), str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ},
        )
        for i in range(4)
    ]
    go.touch()
    results = []
    for worker in workers:
        out, err = worker.communicate(timeout=240)
        assert worker.returncode == 0, err
        results.append(json.loads(out.splitlines()[-1]))
    head = git("rev-parse", "HEAD", cwd=project)
    assert {r["commit"] for r in results} == {head}
    assert len({r["vcs_cache"] for r in results}) == 1
    assert [p.name for p in cache.iterdir() if p.is_dir()] == [Path(results[0]["vcs_cache"]).name]
    for i in range(4):
        assert len(list((tmp_path / f"code{i}/data").iterdir())) == 200
        assert git("status", "--porcelain", cwd=tmp_path / f"code{i}") == ""


def test_an_unusable_cache_folder_fails_the_task_clearly(
    plane: ControlPlane, tmp_path: Path, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache should be")
    monkeypatch.setenv("CLEARML_AGENT__AGENT__VCS_CACHE__PATH", str(blocker))
    task = plane.create_task(Task(name="t", script=Script(repository=project.as_uri(), entry_point="run.py")))
    outcome = run(plane, task)
    reason = plane.get_task(task.id).status_reason
    assert outcome.status == TaskStatus.FAILED
    assert reason.startswith(f"cannot check out {project.as_uri()}: ") and "internal error" not in reason
