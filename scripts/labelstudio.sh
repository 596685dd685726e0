#!/usr/bin/env bash
# Start Label Studio, the annotation tool of `nlu-mlflow inbox push|pull` (docs/annotation.md), from its own
# environment (.labelstudio-venv: `make labelstudio-venv`), bound to loopback, its data in SQLite.
#
#   LABEL_STUDIO_USERNAME=me@example.com LABEL_STUDIO_PASSWORD=... LABEL_STUDIO_USER_TOKEN=... \
#       scripts/labelstudio.sh [--port 8080] [label-studio start options]
#
# Credentials come from the environment, never from the command line (`ps` shows it to every user):
#   LABEL_STUDIO_USERNAME     the first user's e-mail (created at the first start; later starts reset its password)
#   LABEL_STUDIO_PASSWORD     its password (the web page's login)
#   LABEL_STUDIO_USER_TOKEN   its API token, what `nlu-mlflow inbox` sends (LABEL_STUDIO_API_KEY on its side);
#                             legacy tokens are switched on when the organization is created, at the first start
# LABEL_STUDIO_BASE_DATA_DIR  where the SQLite database and uploads live (default: .labelstudio-data here)
# LABEL_STUDIO_PORT           the port when --port is not given (default 8080; Label Studio takes the next free one
#                             when it is taken, so check the "Starting development server at" line)
# LABEL_STUDIO_INTERNAL_HOST  the address it binds (default 127.0.0.1; Label Studio's own default is 0.0.0.0)
# LABEL_STUDIO_DRY_RUN=1      checks the settings and prints the `label-studio start` command instead of running it.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${LABEL_STUDIO_VENV:-$ROOT/.labelstudio-venv}"

fail() { echo "labelstudio.sh: $*" >&2; exit 2; }

[ -x "$VENV/bin/label-studio" ] || fail "no Label Studio environment at $VENV: run \`make labelstudio-venv\` first."
[ -n "${LABEL_STUDIO_USERNAME:-}" ] || fail "LABEL_STUDIO_USERNAME is not set: give the first user's e-mail, e.g. annotator@example.com."
[ -n "${LABEL_STUDIO_PASSWORD:-}" ] || fail "LABEL_STUDIO_PASSWORD is not set: give that user's password (at least 8 characters)."
token="${LABEL_STUDIO_USER_TOKEN:-}"
[ "${#token}" -ge 20 ] || fail "LABEL_STUDIO_USER_TOKEN is not set or shorter than \
20 characters: generate one with \`python3 -c 'import secrets; print(secrets.token_hex(20))'\` and give the same \
value to nlu-mlflow as LABEL_STUDIO_API_KEY."

export LABEL_STUDIO_BASE_DATA_DIR="${LABEL_STUDIO_BASE_DATA_DIR:-$ROOT/.labelstudio-data}"
export DJANGO_DB=sqlite
# API tokens as `Authorization: Token ...` (1.23 switches them off for a new organization otherwise)
export LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN=true
export LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK=true
# nothing leaves the machine: the tasks hold users' (masked) messages; Label Studio would send errors to its
# Sentry project, usage analytics and a version check otherwise
export SENTRY_DSN="" FRONTEND_SENTRY_DSN="" COLLECT_ANALYTICS=false LATEST_VERSION_CHECK=false
mkdir -p "$LABEL_STUDIO_BASE_DATA_DIR"

port_given=""
for arg in "$@"; do case "$arg" in -p|--port|--port=*) port_given=1 ;; esac; done
args=(--no-browser --internal-host "${LABEL_STUDIO_INTERNAL_HOST:-127.0.0.1}" --data-dir "$LABEL_STUDIO_BASE_DATA_DIR")
[ -n "$port_given" ] || args+=(--port "${LABEL_STUDIO_PORT:-8080}")
cmd=("$VENV/bin/label-studio" start "${args[@]}" "$@")
if [ -n "${LABEL_STUDIO_DRY_RUN:-}" ]; then
  printf '%q ' "${cmd[@]}"; echo
  exit 0
fi
exec "${cmd[@]}"
