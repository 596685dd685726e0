#!/usr/bin/env bash
# Start the shared MLflow tracking server the way docs/shared-server.md recommends: MLflow from .server-venv
# (requirements/server-lock.txt: the current MLflow, not the client's 3.5.1), a database backend store,
# artifacts served by the server, a Host allow-list, a fixed webhook encryption key and basic-auth.
#
#   scripts/mlflow-server.sh --backend-store-uri postgresql+psycopg2://mlflow@db:5432/mlflow \
#       --artifacts-destination /srv/mlflow/artifacts --allowed-hosts 'mlflow.example.com' [mlflow server options]
#
# Every other option goes to `mlflow server` as given (--host, --port, --workers, --cors-allowed-origins...).
# Secrets come from the environment, never from the command line (`ps` shows it to every user):
#   MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY  Fernet key that encrypts webhook secrets; keep it across restarts
#   MLFLOW_AUTH_CONFIG_PATH               the basic-auth ini (deploy/mlflow-server/basic_auth.ini is a template)
#   MLFLOW_FLASK_SERVER_SECRET_KEY        basic-auth's CSRF key: a long random string, the same on every replica
#   MLFLOW_AUTH_ADMIN_PASSWORD            the admin's password, read on the very first start only
#   PGPASSWORD                            the database password, read by libpq
# NLU_MLFLOW_SERVER_AUTH=off starts without basic-auth: only for a server that nobody else can reach (tests).
# NLU_MLFLOW_SERVER_DRY_RUN=1 checks the settings and prints the `mlflow server` command instead of running it.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${NLU_MLFLOW_SERVER_VENV:-$ROOT/.server-venv}"

fail() { echo "mlflow-server.sh: $*" >&2; exit 2; }

option() {  # option NAME ARGS...: the value of --NAME in ARGS (`--NAME VALUE` or `--NAME=VALUE`), or nothing
  local name=$1; shift
  while [ $# -gt 0 ]; do
    case "$1" in
      "--$name") echo "${2:-}"; return ;;
      "--$name="*) echo "${1#*=}"; return ;;
    esac
    shift
  done
}

bare_postgres() {  # a postgresql:// URI without a driver: SQLAlchemy 2.1 would pick psycopg 3
  case "$1" in postgresql://*|postgres://*) return 0 ;; *) return 1 ;; esac
}

[ -x "$VENV/bin/mlflow" ] || fail "no server environment at $VENV: run \`make server-venv\` first."

backend="$(option backend-store-uri "$@")"
backend="${backend:-${MLFLOW_BACKEND_STORE_URI:-}}"
[ -n "$backend" ] || fail "--backend-store-uri is missing: give the database, e.g. postgresql+psycopg2://mlflow@db:5432/mlflow."
case "$backend" in
  postgresql*|mysql*|mssql*|sqlite:*) ;;
  *) fail "--backend-store-uri $backend: use a database (registry webhooks need one), e.g. postgresql+psycopg2://mlflow@db:5432/mlflow." ;;
esac
! bare_postgres "$backend" || fail "--backend-store-uri ${backend%%://*}://...: name the driver, \
postgresql+psycopg2://... (the server's SQLAlchemy 2.1 would use psycopg 3, which MLflow's registry breaks on)."
[ -n "$(option artifacts-destination "$@")${MLFLOW_ARTIFACTS_DESTINATION:-}" ] || fail "--artifacts-destination \
is missing: the folder or bucket where the server keeps run and model files, e.g. /srv/mlflow/artifacts."
[ -n "$(option allowed-hosts "$@")" ] || fail "--allowed-hosts is missing: list every host name clients use \
to reach the server, e.g. 'mlflow.example.com,mlflow.example.com:*'."
[ -n "${MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY:-}" ] || fail "MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY is not set: \
generate one with \`$VENV/bin/python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'\` \
and keep it (webhook secrets stored under another key cannot be read)."

auth=()
if [ "${NLU_MLFLOW_SERVER_AUTH:-on}" != "off" ]; then
  ini="${MLFLOW_AUTH_CONFIG_PATH:-}"
  [ -n "$ini" ] || fail "MLFLOW_AUTH_CONFIG_PATH is not set: point it at a basic-auth ini \
(template: deploy/mlflow-server/basic_auth.ini), or set NLU_MLFLOW_SERVER_AUTH=off for a server only you can reach."
  [ -f "$ini" ] || fail "MLFLOW_AUTH_CONFIG_PATH=$ini: no such file."
  auth_db="$(sed -n 's/^[[:space:]]*database_uri[[:space:]]*=[[:space:]]*//p' "$ini")"
  ! bare_postgres "$auth_db" || fail "$ini: database_uri ${auth_db%%://*}://...: name the driver, postgresql+psycopg2://..."
  [ -n "${MLFLOW_FLASK_SERVER_SECRET_KEY:-}" ] || fail "MLFLOW_FLASK_SERVER_SECRET_KEY is not set \
(basic-auth's CSRF key: a long random string, the same on every replica)."
  auth=(--app-name basic-auth)
fi

# MLflow 3.18 starts a job runner and eight huey consumers (~700 MB) for its GenAI jobs; nlu-mlflow runs none
export MLFLOW_SERVER_ENABLE_JOB_EXECUTION="${MLFLOW_SERVER_ENABLE_JOB_EXECUTION:-false}"
unset MLFLOW_TRACKING_URI MLFLOW_TRACKING_USERNAME MLFLOW_TRACKING_PASSWORD
cmd=("$VENV/bin/mlflow" server --serve-artifacts "${auth[@]}" "$@")
if [ -n "${NLU_MLFLOW_SERVER_DRY_RUN:-}" ]; then
  printf '%q ' "${cmd[@]}"; echo
  exit 0
fi
exec "${cmd[@]}"
