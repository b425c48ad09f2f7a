#!/usr/bin/env bash
# Faults under load (see bench/faults.py): gunicorn on loopback, analytics_db and the replica
# stopped and started under a mixed read/write load; 0 unexpected 5xx and 0 lost writes expected.
#   bench/faults.sh            # 20 s phases
#   bench/faults.sh --short    # CI form, 4 s phases
# Needs root (it starts PostgreSQL clusters as the postgres user) and the local servers.
set -euo pipefail
source "$(dirname "$0")/../scripts/lib.sh"
cd "$ROOT"
bootstrap_venv requirements.txt
ensure_services
exec python bench/faults.py "$@"
