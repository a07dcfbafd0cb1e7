# Sourced by the other scripts: puts a uv on PATH, installing it from PyPI when missing.
if ! command -v uv >/dev/null 2>&1; then
    if [ ! -x "$PWD/.local/uv/bin/uv" ]; then
        python3 -m venv "$PWD/.local/uv" >/dev/null
        "$PWD/.local/uv/bin/pip" install --quiet --disable-pip-version-check uv
    fi
    export PATH="$PWD/.local/uv/bin:$PATH"
fi
