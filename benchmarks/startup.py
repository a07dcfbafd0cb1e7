"""Start-up time of ``clearml-core --help`` against ``python -c "import typer"``, in one run.

Typer itself is the floor any typer CLI pays; the target is ``--help`` within 1.5x of it with every
plugin of the environment installed (run from the workspace venv: ``uv run python
benchmarks/startup.py``, or ``make bench``). Commands run interleaved, after a warm-up, and the
median of each is compared, so a busy machine slows both sides alike. ``plugins list`` is shown
for information. Exits 1 when the target is missed.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from common import machine

TARGET_RATIO = 1.5


def console_script() -> str:
    """The installed ``clearml-core`` next to this interpreter (the workspace venv's)."""
    beside = Path(sys.executable).parent / "clearml-core"
    found = str(beside) if beside.exists() else shutil.which("clearml-core")
    if not found:
        sys.exit("clearml-core is not installed in this environment; run `uv sync --all-packages` first")
    return found


def run_once(command: list[str]) -> float:
    start = time.perf_counter()
    completed = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
    elapsed = time.perf_counter() - start
    if completed.returncode != 0:
        sys.exit(f"{' '.join(command)} exited {completed.returncode}: {completed.stderr.decode()[-2000:]}")
    return elapsed


def measure(commands: dict[str, list[str]], runs: int, warmup: int) -> dict[str, list[float]]:
    """Wall times of each command, interleaved so that drift hits every command alike."""
    for _ in range(warmup):
        for command in commands.values():
            run_once(command)
    times: dict[str, list[float]] = {label: [] for label in commands}
    for _ in range(runs):
        for label, command in commands.items():
            times[label].append(run_once(command))
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=21, help="measured runs per command (at least 15)")
    parser.add_argument("--warmup", type=int, default=3, help="unmeasured runs per command first")
    args = parser.parse_args(argv)
    if args.runs < 15:
        parser.error("--runs must be at least 15 for a stable median")

    script = console_script()
    baseline = "python -c 'import typer'"
    target = "clearml-core --help"
    commands = {
        baseline: [sys.executable, "-c", "import typer"],
        target: [script, "--help"],
        "clearml-core plugins list": [script, "plugins", "list"],
    }
    env_plugins = sorted({ep.name for ep in importlib.metadata.entry_points(group="clearml_core.plugins")})
    times = measure(commands, args.runs, args.warmup)
    medians = {label: statistics.median(values) for label, values in times.items()}
    floor = medians[baseline]

    print(f"start-up time, median of {args.runs} runs after {args.warmup} warm-up runs each")
    print(machine())
    print(f"plugins installed: {', '.join(env_plugins) or 'none'} (plus the built-in one)")
    print()
    width = max(len(label) for label in commands)
    print(f"| {'command':<{width}} | median ms |   min ms | vs typer |")
    print(f"|{'-' * (width + 2)}|----------:|---------:|---------:|")
    for label, values in times.items():
        print(
            f"| {label:<{width}} | {medians[label] * 1000:9.1f} | {min(values) * 1000:8.1f} "
            f"| {medians[label] / floor:7.2f}x |"
        )
    ratio = medians[target] / floor
    verdict = "PASS" if ratio <= TARGET_RATIO else "FAIL"
    print()
    print(f"{verdict}: `{target}` takes {ratio:.2f}x `{baseline}` (target <= {TARGET_RATIO}x)")
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
