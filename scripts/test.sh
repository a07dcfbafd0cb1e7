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
# Debian's chromium and its driver, for the server's web page test (selenium drives them; no browser
# is downloaded): only when missing.
if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
    if [ "$(id -u)" -eq 0 ]; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null
    else
        echo "warning: no chromium / chromedriver and not root: the web page test will fail; install chromium chromium-driver" >&2
    fi
fi
uv run --no-sync ruff check .
uv run --no-sync ruff format --check .
uv run --no-sync mypy
# pytest exits 5 when it collects nothing; that is a failure here as much as a failing test.
uv run --no-sync pytest "$@"
