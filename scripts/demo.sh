#!/usr/bin/env bash
# The main job on the embedded default: installs clearml-core with uv and checks the installation.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/ensure-uv.sh

uv sync --all-packages --quiet
uv run --no-sync clearml-core doctor
