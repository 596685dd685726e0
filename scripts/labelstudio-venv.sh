#!/usr/bin/env bash
# Build .labelstudio-venv, Label Studio's own environment, from requirements/labelstudio-lock.txt
# (`make labelstudio-venv`, about 3 minutes, ~1 GB); `--lock` re-resolves the lock from requirements/labelstudio.in
# first. Label Studio needs pydantic 2 and Django 5, so it cannot share the client's .venv (Rasa 3.6: pydantic 1);
# scripts/labelstudio.sh starts it, docs/annotation.md says how nlu-mlflow talks to it.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
VENV=${LABELSTUDIO_VENV:-.labelstudio-venv}
command -v "$PY" >/dev/null 2>&1 || { echo "labelstudio-venv: $PY not found: set PYTHON=/path/to/python3.11" >&2; exit 1; }

rm -rf "$VENV"
"$PY" -m venv "$VENV"
# uv (requirements/uv.txt, hash-pinned) installs the lock several times faster than pip; it lives inside the venv
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --require-hashes --no-deps \
    --target "$VENV/.uv" -r requirements/uv.txt
UV="$VENV/.uv/bin/uv"

if [ "${1:-}" = "--lock" ]; then
  "$UV" pip compile requirements/labelstudio.in \
      --python-version 3.11 --python-platform x86_64-unknown-linux-gnu --generate-hashes \
      --custom-compile-command "make labelstudio-lock" --quiet -o requirements/labelstudio-lock.txt
fi
# --compile-bytecode: Django imports hundreds of modules at every start; compiled once here, not at each start
"$UV" pip sync --quiet --python "$VENV/bin/python" --require-hashes --compile-bytecode requirements/labelstudio-lock.txt
touch "$VENV/.installed"
echo "$VENV ready: label-studio $("$VENV/bin/python" -c "import importlib.metadata as m; print(m.version('label-studio'))")"
