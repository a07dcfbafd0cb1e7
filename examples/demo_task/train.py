"""The demo task: a few lines of output, two small requirements, one artifact.

Run by ``make demo`` from a throw-away git repository made of this folder; the agent checks
that repository out, builds (or reuses) an environment with ``requirements.txt`` and runs this
script with ``CLEARML_OUTPUT_DIR`` pointing at a folder whose files become the task's output.
"""

from __future__ import annotations

import json
import os
import platform
import sys
from pathlib import Path

import idna
import six


def main() -> None:
    print(f"hello from task {os.environ.get('CLEARML_TASK_ID', '(no task id)')}")
    print(f"python {platform.python_version()} at {sys.executable}")
    print(f"six {six.__version__}, idna {idna.__version__}")
    encoded = idna.encode("bücher.example").decode("ascii")
    print(f"idna.encode('bücher.example') = {encoded}")
    message = Path("message.txt")
    if message.exists():  # not committed: it reaches the agent through the task's recorded diff
        print(f"message.txt (uncommitted): {message.read_text(encoding='utf-8').strip()}")
    output = Path(os.environ.get("CLEARML_OUTPUT_DIR", "output"))
    output.mkdir(parents=True, exist_ok=True)
    result = {"encoded": encoded, "six": six.__version__, "idna": idna.__version__}
    (output / "result.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {output / 'result.json'}")


if __name__ == "__main__":
    main()
