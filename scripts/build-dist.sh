#!/usr/bin/env bash
# Build the wheel of every distribution of the workspace (clearml-core and each plugins/*) into
# dist/ or $1 (relative to where you run it). Then, for a user:
#   pip install --find-links dist 'clearml-core[s3,azure,gs,sftp]'   (see README.md, Install)
set -euo pipefail
out="${1:-dist}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
cd "$(dirname "$0")/.."
source scripts/ensure-uv.sh
# Only wheels are replaced: the folder may be one the caller cares about.
rm -f "$out"/*.whl
uv build --all-packages --wheel --out-dir "$out" --quiet
ls "$out"/*.whl
