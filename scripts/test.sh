#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs uv and the workspace, checks style and types,
# runs the tests. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/ensure-uv.sh

uv sync --all-packages --quiet
# Azurite (the Azure Blob stand-in the Azure plugin's tests start) comes from npm, into a
# project-local folder, only when it is not there yet.
if [ ! -x .local/node/node_modules/.bin/azurite-blob ]; then
    npm install --prefix .local/node --no-audit --no-fund --loglevel=error azurite
fi
# Debian's packages the tests use, installed only when missing (as root; otherwise a warning, and
# those tests skip, or fail under CI=true):
# - openssh-server: the sshd the SFTP plugin's tests start on 127.0.0.1 with their own config;
# - redis-server: the redis-servers the Redis control plane's tests start with their own port and data;
# - docker.io, debootstrap: the dockerd the docker plugin's tests start (data in a temporary folder)
#   when none answers, and their image, made with debootstrap (no registry is reachable);
# - podman: the podman API service of the --podman tests (storage in a temporary folder);
# - chromium, chromium-driver: the browser selenium drives for the server's web page test.
# The system's own services are neither configured nor started.
missing=()
need() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/usr/bin/$1" ] || missing+=("$2"); }
need sshd openssh-server
need redis-server redis-server
need dockerd docker.io
need debootstrap debootstrap
need podman podman
need chromium chromium
need chromedriver chromium-driver
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" -eq 0 ]; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    else
        echo "warning: not root, so these are not installed and their tests will skip (CI: fail): ${missing[*]}" >&2
    fi
fi
uv run --no-sync ruff check .
uv run --no-sync ruff format --check .
uv run --no-sync mypy
# pytest exits 5 when it collects nothing; that is a failure here as much as a failing test.
uv run --no-sync pytest "$@"
