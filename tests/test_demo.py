"""``make demo`` (scripts/demo.sh) is self-contained: the user's own clearml.conf cannot break it.

A user whose clearml.conf sends outputs to S3 (``sdk.development.default_output_uri: s3://…``),
or who overrides it in the environment, still gets a demo that completes, with its artifact in the
demo's own folder. Slow: it runs the whole demo (a git repository, a task, an agent, an
environment built by uv).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

ROOT = Path(__file__).resolve().parents[1]
# Captured at import, before the per-test private HOME: uv's download cache stays where it is.
_REAL_ENV = dict(os.environ)


def _uv_cache_dir() -> str:
    uv = shutil.which("uv", path=_REAL_ENV.get("PATH")) or str(ROOT / ".local" / "uv" / "bin" / "uv")
    found = subprocess.run([uv, "cache", "dir"], env=_REAL_ENV, capture_output=True, text=True, check=True)
    return found.stdout.strip()


def test_the_demo_keeps_its_outputs_whatever_the_users_clearml_conf_says(tmp_path):
    home = tmp_path / "user-home"
    home.mkdir()
    user_conf = home / "clearml.conf"
    user_conf.write_text(
        'sdk.development.default_output_uri: "s3://no-such-bucket-of-this-user/outputs"\n', encoding="utf-8"
    )
    demo_dir = tmp_path / "demo"
    # the user's shell (proxies, CA bundles, package indexes), less any clearml setting of theirs
    env = {k: v for k, v in _REAL_ENV.items() if not k.startswith(("CLEARML", "VIRTUAL_ENV"))}
    env.update(
        HOME=str(home),
        CLEARML_CONFIG_FILE=str(user_conf),
        CLEARML__SDK__DEVELOPMENT__DEFAULT_OUTPUT_URI="s3://no-such-bucket-of-this-user/from-env",
        CLEARML_DEMO_DIR=str(demo_dir),
        UV_CACHE_DIR=_uv_cache_dir(),
    )
    completed = subprocess.run(
        ["bash", str(ROOT / "scripts" / "demo.sh")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=840,
        check=False,
    )
    output = completed.stdout + completed.stderr
    assert completed.returncode == 0, output
    assert "status:      completed" in output, output
    assert "no-such-bucket-of-this-user" not in output
    result = next((demo_dir / "outputs").rglob("result.json"))
    assert json.loads(result.read_text(encoding="utf-8"))["encoded"] == "xn--bcher-kva.example"
    assert user_conf.read_text(encoding="utf-8").startswith("sdk.development.default_output_uri")
