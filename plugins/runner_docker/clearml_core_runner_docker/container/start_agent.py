"""Inside the container: install clearml-core into its own environment (once per image and
version), then hand over to it. Run by the container's ``python3``; standard library only.

Usage: ``python3 start_agent.py PLAN.json``. The plan (written by the agent on the host) says
where the environment goes, which wheels to install from the mounted wheelhouse (or which
requirement to install from the package index), where to write a failure reason, and what to run
with the environment's Python when it is ready. The environment is built beside its final path and
marked complete last, under a lock, so containers starting at once build it once and a killed
build is never used.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys

MARKER = ".clearml-agent-ready"  # bootstrap.READY_MARKER: the script checks it before running this
MIN_PYTHON = (3, 10)


def fail(plan: dict, reason: str, code: int = 3) -> None:
    print(f"clearml-core: {reason}", flush=True)
    try:
        with open(plan["result"], "w", encoding="utf-8") as handle:
            json.dump({"status": "failed", "reason": reason, "stage": "agent"}, handle)
    except (OSError, KeyError):
        pass
    sys.exit(code)


def run(argv: list[str], plan: dict, what: str) -> None:
    print(f"clearml-core: {' '.join(argv[:3])} … ({what})", flush=True)
    completed = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False)
    for line in (completed.stdout or "").splitlines():
        print(line, flush=True)
    if completed.returncode != 0:
        lines = [line for line in (completed.stdout or "").splitlines() if line.strip()]
        fail(
            plan,
            f"{what} failed in the container: {lines[-1] if lines else f'exit code {completed.returncode}'}",
        )


def working_uv(plan: dict) -> str | None:
    uv = plan.get("uv")
    if not uv or not os.access(uv, os.X_OK):
        return None
    try:
        ok = subprocess.run([uv, "--version"], capture_output=True, timeout=30, check=False).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        ok = False
    return uv if ok else None


def build(plan: dict, target: str) -> None:
    uv = working_uv(plan)
    python = os.path.join(target, "bin", "python")
    links = ["--find-links", plan["wheelhouse"]]
    if uv:
        run(
            [uv, "venv", "--quiet", "--python", sys.executable, target],
            plan,
            "creating the agent's environment",
        )
        install = [uv, "pip", "install", "--quiet", "--python", python]
    else:
        run(
            [sys.executable, "-m", "venv", target], plan, "creating the agent's environment (python3 -m venv)"
        )
        install = [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    if plan.get("index_requirement"):
        run(
            [*install, plan["index_requirement"]],
            plan,
            f"installing {plan['index_requirement']} from the package index",
        )
    else:
        run(
            [*install, "--no-index", *links, *plan["requirements"]],
            plan,
            "installing clearml-core from the mounted wheels",
        )
    if plan.get("alone"):
        run(
            [*install, "--no-index", "--no-deps", *links, *plan["alone"]],
            plan,
            "installing the container runner",
        )


def ensure_environment(plan: dict) -> str:
    target = plan["venv"]
    python = os.path.join(target, "bin", "python")
    if os.path.exists(os.path.join(target, MARKER)):
        return python
    parent = os.path.dirname(target)
    os.makedirs(parent, exist_ok=True)
    with open(target + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if os.path.exists(os.path.join(target, MARKER)):
            return python
        shutil.rmtree(target, ignore_errors=True)  # what a killed build left
        print(
            f"clearml-core: installing clearml-core in this image (once per image and version): {target}",
            flush=True,
        )
        build(plan, target)
        with open(os.path.join(target, MARKER), "w") as marker:
            marker.write(json.dumps({"python": sys.version.split()[0]}))
    return python


def main() -> None:
    with open(sys.argv[1], encoding="utf-8") as handle:
        plan = json.load(handle)
    if sys.version_info[:2] < MIN_PYTHON:
        fail(
            plan,
            f"the image's python3 is {sys.version.split()[0]}; clearml-core needs Python "
            f"{'.'.join(map(str, MIN_PYTHON))} or newer in the container: use an image with a newer Python",
        )
    python = ensure_environment(plan)
    image_venv = os.environ.get("VIRTUAL_ENV", "")
    if image_venv:  # the image activated an environment of its own (agent.docker_use_activated_venv)
        os.environ["CLEARML_CORE_IMAGE_VIRTUAL_ENV"] = image_venv
    os.environ.update(plan.get("environ", {}))
    # tasks run with (and their environments are built from) the image's Python, not the agent's
    os.environ.setdefault("CLEARML_AGENT__AGENT__PYTHON_BINARY", sys.executable)
    command = [python, *plan["command"]]
    sys.stdout.flush()
    os.execv(python, command)  # noqa: S606  (the agent's own interpreter, argv as a list)


if __name__ == "__main__":
    main()
