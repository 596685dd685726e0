#!/usr/bin/env bash
# Install PostgreSQL's server from Debian's packages (tests start and stop their own clusters).
set -euo pipefail
if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  exit 0
fi
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends postgresql >/dev/null
# the tests run their own clusters: keep the packaged one from holding port 5432
$SUDO pg_ctlcluster --help >/dev/null 2>&1 && $SUDO pg_lsclusters -h | while read -r ver name _; do
  $SUDO pg_ctlcluster "$ver" "$name" stop || true
done
ls /usr/lib/postgresql/*/bin/initdb
