#!/usr/bin/env bash
# The main job on the embedded default (`make demo`): install clearml-core with uv, make a small git
# repository from examples/demo_task/, create a task from that working copy (remote, commit and an
# uncommitted change recorded), enqueue it on the embedded SQLite control plane, run an agent until
# the queue is empty, and print the task's status, its log and where its output artifact went.
#
# Everything the demo creates lives in .demo/ (or $CLEARML_DEMO_DIR): its own HOME for clearml-core
# (control plane, task folders, VCS and environment caches), its own clearml.conf, and its own
# output folder (.demo/outputs) for the task's artifact. Your ~/clearml.conf, CLEARML_CONFIG_FILE
# and CLEARML__… overrides are not read (an S3 default_output_uri of yours cannot break the demo),
# and ~/.clearml-core and ~/.clearml are not touched. Run it twice: the second run takes the code
# from the VCS cache and the environment from the environment cache. `rm -rf .demo` starts over.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
source scripts/ensure-uv.sh

if ! command -v git >/dev/null 2>&1; then
    echo "error: the demo needs git (the task's code is a git repository); install git first" >&2
    exit 2
fi

step() { printf '\n==> %s\n' "$*"; }

step "installing clearml-core into .venv (uv sync --all-packages)"
uv sync --all-packages --quiet
CLI="$ROOT/.venv/bin/clearml-core"
PY="$ROOT/.venv/bin/python"

DEMO_DIR=${CLEARML_DEMO_DIR:-$ROOT/.demo}
mkdir -p "$DEMO_DIR"
DEMO_DIR=$(cd "$DEMO_DIR" && pwd)
DEMO_HOME=$DEMO_DIR/home
REPO=$DEMO_DIR/demo-task-repo
mkdir -p "$DEMO_HOME"

# The task's artifact always goes to a folder of the demo, whatever your own configuration says.
OUTPUT_URI=file://$DEMO_DIR/outputs

# Package downloads keep using your caches; everything else of clearml-core goes under the demo.
export UV_CACHE_DIR=${UV_CACHE_DIR:-$(uv cache dir)}
export PIP_CACHE_DIR=${PIP_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/pip}
export HOME=$DEMO_HOME
export CLEARML_CONFIG_FILE=$DEMO_DIR/clearml.conf
# Your overrides of clearml.conf (CLEARML__SDK__…, CLEARML_AGENT__…) would win over the demo's file.
while IFS= read -r name; do unset "$name"; done < <(compgen -e | grep -E '^CLEARML(_AGENT)?__' || true)
cat >"$CLEARML_CONFIG_FILE" <<EOF
# Written by scripts/demo.sh: the demo's configuration. Its state is under HOME=$DEMO_HOME
# (~/.clearml-core: control plane and task folders; ~/.clearml: VCS and environment caches).
sdk.development.default_output_uri: "$OUTPUT_URI"
EOF

step "a git repository from examples/demo_task/ in $REPO"
rm -rf "$REPO"
mkdir -p "$REPO"
cp -R examples/demo_task/. "$REPO/"
export GIT_CONFIG_NOSYSTEM=1
# a fixed author and date: the same files give the same commit, so a second run finds it cached
export GIT_AUTHOR_NAME="clearml-core demo" GIT_AUTHOR_EMAIL="demo@localhost"
export GIT_COMMITTER_NAME="clearml-core demo" GIT_COMMITTER_EMAIL="demo@localhost"
export GIT_AUTHOR_DATE="2025-01-01T00:00:00+0000" GIT_COMMITTER_DATE="2025-01-01T00:00:00+0000"
git -C "$REPO" -c init.defaultBranch=main init --quiet
git -C "$REPO" add -A
git -C "$REPO" -c commit.gpgsign=false commit --quiet -m "demo task"
echo "hello from an uncommitted file" >"$REPO/message.txt"
echo "commit $(git -C "$REPO" rev-parse --short HEAD) on main, plus an uncommitted message.txt"

step "clearml-core task create --repo $REPO --script train.py --queue demo"
"$CLI" queue create demo --exist-ok >/dev/null
TASK_ID=$("$CLI" task create --name "demo task" --project demo --repo "$REPO" --script train.py --queue demo)
echo "task $TASK_ID"
"$CLI" task show "$TASK_ID" | grep -E '^(status|repository|branch|commit|entry point|requirements):' || true

step "clearml-core agent daemon --queue demo --stop-when-empty --foreground"
set +e
"$CLI" agent daemon --queue demo --stop-when-empty --foreground >"$DEMO_DIR/daemon.log" 2>&1
DAEMON_RC=$?
set -e
if [ "$DAEMON_RC" -ne 0 ]; then
    echo "the daemon exited with $DAEMON_RC; its console:" >&2
    tail -n 40 "$DEMO_DIR/daemon.log" >&2
fi
echo "(the daemon's console is in $DEMO_DIR/daemon.log)"

step "clearml-core task logs $TASK_ID"
"$CLI" task logs "$TASK_ID"

step "the task"
TASK_JSON=$("$CLI" task show "$TASK_ID" --json) "$PY" - <<'PYTHON'
import json
import os
import sys
from urllib.parse import urlparse
from urllib.request import url2pathname

task = json.loads(os.environ["TASK_JSON"])
runtime = task.get("runtime") or {}
reason = task.get("status_reason") or ""
print("status:      " + task["status"] + (f" ({reason})" if reason else ""))
code = runtime.get("code") or {}
if code:
    where = "fetched into the VCS cache" if code.get("fetched") else "from the VCS cache, no fetch"
    extra = ", uncommitted changes applied" if code.get("diff_applied") else ""
    print(f"code:        {code['url']} @ {code['commit'][:12]}, {where}{extra}")
env = runtime.get("environment") or {}
if env:
    print(f"environment: {env.get('source', '?')} in {env.get('seconds', 0):.2f} s ({env.get('python', '')})")
outputs = runtime.get("outputs") or {}
if outputs:
    print(f"artifact:    {outputs['uri']}/{outputs['files'][0]}")
    parsed = urlparse(outputs["uri"])
    if parsed.scheme == "file":
        print(f"             on disk: {url2pathname(parsed.path)}/{outputs['files'][0]}")
print(f"log file:    {runtime.get('log_file', '')}")
if task["status"] == "completed":
    cached = "the code comes from the VCS cache"
    if env:
        cached += " and the environment from the environment cache"
    print(f"\nRun 'make demo' again: {cached}.")
sys.exit(0 if task["status"] == "completed" else 1)
PYTHON
