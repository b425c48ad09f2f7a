#!/usr/bin/env bash
# Race drill (see bench/races.py): two gunicorn instances on the real engines sharing Redis, client
# threads racing deletions, If-Match updates, one Idempotency-Key and a throttled burst.
#   bench/races.sh            # 10 rounds per phase
#   bench/races.sh --short    # CI form, about a minute
# Ports RACES_PORTS (18201-18204), Redis RACES_REDIS_URL (redis://127.0.0.1:6379/11), databases
# RACES_DB_PREFIX (sy_races; dropped and created afresh). Exit 1 on any failed check or 5xx.
set -euo pipefail
source "$(dirname "$0")/../scripts/lib.sh"
cd "$ROOT"
bootstrap_venv requirements.txt
ensure_services
exec python bench/races.py "$@"
