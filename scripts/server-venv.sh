#!/usr/bin/env bash
# Build .server-venv, the tracking server's own environment, from requirements/server-lock.txt
# (`make server-venv`, about a minute); `--lock` re-resolves the lock from requirements/server.in first.
# The client's .venv stays on mlflow 3.5.1; docs/shared-server.md says which MLflow runs where and why.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
VENV=${SERVER_VENV:-.server-venv}
command -v "$PY" >/dev/null 2>&1 || { echo "server-venv: $PY not found: set PYTHON=/path/to/python3.11" >&2; exit 1; }

rm -rf "$VENV"
"$PY" -m venv "$VENV"
# uv installs the hash-pinned lock several times faster than pip; it lives inside the venv it builds
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --require-hashes --no-deps \
    --target "$VENV/.uv" -r requirements/uv.txt
UV="$VENV/.uv/bin/uv"

if [ "${1:-}" = "--lock" ]; then
  "$UV" pip compile requirements/server.in --excludes requirements/server-exclude.txt \
      --python-version 3.11 --python-platform x86_64-unknown-linux-gnu --generate-hashes \
      --custom-compile-command "make server-lock" --quiet -o requirements/server-lock.txt
fi
# --compile-bytecode: where PYTHONDONTWRITEBYTECODE is set nothing would ever be compiled, and
# `mlflow server` imports MLflow twice per start (the command and its worker): 7 s each instead of 14 s
"$UV" pip sync --quiet --python "$VENV/bin/python" --require-hashes --compile-bytecode requirements/server-lock.txt
touch "$VENV/.installed"
echo "$VENV ready: mlflow $("$VENV/bin/python" -c "import importlib.metadata as m; print(m.version('mlflow'))")"
