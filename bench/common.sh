# Shared set-up of the benchmarks: real PostgreSQL/MariaDB databases of their own. Source it.
#   SWITCHYARD_DB_PREFIX (default sy_agg_bench) names the databases; var/bench holds cache_db.
# shellcheck shell=bash
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"
cd "$ROOT"
bootstrap_venv requirements-dev.txt
export SWITCHYARD_DB_PREFIX="${SWITCHYARD_DB_PREFIX:-sy_agg_bench}"
export SWITCHYARD_VAR_DIR="${SWITCHYARD_VAR_DIR:-$ROOT/var/bench}"
mkdir -p "$SWITCHYARD_VAR_DIR"
ensure_services
export_real_urls
ensure_secret_key
export DJANGO_SETTINGS_MODULE="${DJANGO_SETTINGS_MODULE:-bench.settings}"
# The benchmarks send thousands of requests a second with one token: keep the per-token throttle
# (its cost is part of every request) but with a rate they never reach.
export API_THROTTLE_RATE="${API_THROTTLE_RATE:-100000000/minute}"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
