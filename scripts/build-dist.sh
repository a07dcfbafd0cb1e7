#!/usr/bin/env bash
# Build the wheel of every distribution of the workspace into dist/ (or $1).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/ensure-uv.sh
out="${1:-dist}"
rm -rf "$out"
uv build --all-packages --wheel --out-dir "$out" --quiet
ls "$out"
