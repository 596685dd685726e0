#!/usr/bin/env bash
# Create .venv from requirements/lock.txt (Rasa 3.6.21 + TensorFlow 2.12 + MLflow 3.5.1).
# Rasa 3.6 declares python<3.11 but its pinned wheels run on 3.11: the lock is resolved for 3.10
# and installed as-is, without re-resolving (pip would backtrack into packages that need 3.12).
set -euo pipefail
PY=${PYTHON:-}
if [ -z "$PY" ]; then
  for cand in python3.11 python3.10 python3; do
    if command -v "$cand" >/dev/null 2>&1; then PY=$cand; break; fi
  done
fi
ver=$("$PY" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
case "$ver" in
  3.10|3.11) ;;
  *) echo "nlu-mlflow needs Python 3.10 or 3.11 (found $ver at $PY): set PYTHON=/path/to/python3.11 and rerun." >&2
     exit 1 ;;
esac
rm -rf .venv
"$PY" -m venv .venv
.venv/bin/python -m pip install --quiet --no-deps --ignore-requires-python -r requirements/lock.txt
.venv/bin/python -m pip install --quiet --no-deps --no-build-isolation -e .
touch .venv/.installed
echo ".venv ready (Python $ver)"
