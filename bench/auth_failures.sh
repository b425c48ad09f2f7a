#!/usr/bin/env bash
# Refused keys against a served instance beside /health (see bench/auth_failures.py): gunicorn on
# 127.0.0.1:${AUTH_BENCH_PORT:-18620}, real databases of their own (prefix sy_auth_bench by default).
#   bench/auth_failures.sh                                            # per-process memory, 1 worker
#   CACHE_URL=redis://127.0.0.1:6379/3 WEB_CONCURRENCY=2 bench/auth_failures.sh   # shared through Redis
set -euo pipefail
export SWITCHYARD_DB_PREFIX="${SWITCHYARD_DB_PREFIX:-sy_auth_bench}"
source "$(dirname "$0")/common.sh"
python bench/auth_failures.py "$@"
