#!/usr/bin/env bash
# Faults under load (see bench/faults.py): gunicorn on loopback; analytics_db, the replica, MariaDB
# and the PostgreSQL primary stopped and started under a mixed read/write load, each on a
# throwaway server of the drill's own (PostgreSQL 5440-5442, MariaDB 3310): the machine's own
# servers are never touched. 0 unexpected 5xx, never a 500, 0 lost writes expected.
#   bench/faults.sh            # 20 s phases
#   bench/faults.sh --short    # CI form, 4 s phases (about 75 s)
# Needs root (it starts PostgreSQL clusters as the postgres user) and the local servers.
set -euo pipefail
source "$(dirname "$0")/../scripts/lib.sh"
cd "$ROOT"
bootstrap_venv requirements.txt
ensure_services
started=$(date +%s)
status=0
python bench/faults.py "$@" || status=$?
echo "== fault drill: $(( $(date +%s) - started )) s, exit $status"
exit "$status"
