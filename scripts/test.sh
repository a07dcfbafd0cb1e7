#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs uv and the workspace, checks style and types,
# runs the tests. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/ensure-uv.sh

uv sync --all-packages --quiet
uv run --no-sync ruff check .
uv run --no-sync ruff format --check .
uv run --no-sync mypy
# pytest exits 5 when it collects nothing; that is a failure here as much as a failing test.
uv run --no-sync pytest "$@"
