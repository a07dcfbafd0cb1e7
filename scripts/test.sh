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
# OpenSSH's server, for the sshd the SFTP plugin's tests start on 127.0.0.1 with their own config
# (the system's sshd is neither configured nor started by them); Debian's package, only when missing.
if [ ! -x /usr/sbin/sshd ]; then
    if [ "$(id -u)" -eq 0 ]; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends openssh-server >/dev/null
    else
        echo "warning: no /usr/sbin/sshd and not root: the SFTP tests will fail; install openssh-server" >&2
    fi
fi
# Redis's server, for the redis-servers the Redis control plane's tests start on 127.0.0.1 with their
# own port and data folder (the system's service is neither configured nor started by them).
if ! command -v redis-server >/dev/null 2>&1 && [ ! -x /usr/bin/redis-server ]; then
    if [ "$(id -u)" -eq 0 ]; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-server >/dev/null
    else
        echo "warning: no redis-server and not root: the Redis control plane tests will be skipped (CI: fail); install redis-server" >&2
    fi
fi
# A container engine and debootstrap, for the docker plugin's tests: they start a dockerd of their own
# (data in a temporary folder) when none answers, and build their image with debootstrap (no
# registry is reachable); Debian's packages, only when missing.
if ! command -v dockerd >/dev/null 2>&1 || ! command -v debootstrap >/dev/null 2>&1; then
    if [ "$(id -u)" -eq 0 ]; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker.io debootstrap >/dev/null
    else
        echo "warning: no dockerd/debootstrap and not root: the docker tests will be skipped (CI: fail); install docker.io and debootstrap" >&2
    fi
fi
# Podman, for the docker plugin's --podman tests: they start a podman API service of their own
# (storage in a temporary folder) and import the same image; Debian's package, only when missing.
if ! command -v podman >/dev/null 2>&1; then
    if [ "$(id -u)" -eq 0 ]; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends podman >/dev/null
    else
        echo "warning: no podman and not root: the podman tests will be skipped (CI: fail); install podman" >&2
    fi
fi
uv run --no-sync ruff check .
uv run --no-sync ruff format --check .
uv run --no-sync mypy
# pytest exits 5 when it collects nothing; that is a failure here as much as a failing test.
uv run --no-sync pytest "$@"
