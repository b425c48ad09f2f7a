#!/usr/bin/env bash
# Slow clients (see bench/slowclients.py): nginx in front of gunicorn (scripts/proxy) under a normal
# load while 50 connections trickle headers and 20 trickle bodies; then the same against bare
# gunicorn, for the record. Real databases of its own (prefix sy_slow_bench), loopback ports
# 18310 (proxy) and 18311 (bare gunicorn).
#   bench/slowclients.sh            # 15 s baseline, 30 s attack, 10 s timeouts
#   bench/slowclients.sh --short    # CI form (about 45 s)
set -euo pipefail
started=$(date +%s)
export SWITCHYARD_DB_PREFIX="${SWITCHYARD_DB_PREFIX:-sy_slow_bench}"
export SWITCHYARD_VAR_DIR="${SWITCHYARD_VAR_DIR:-$(cd "$(dirname "$0")/.." && pwd)/var/slowclients-db}"
source "$(dirname "$0")/common.sh"
export DJANGO_SETTINGS_MODULE=core.settings
ensure_apt_packages nginx gettext-base
status=0
python bench/slowclients.py "$@" || status=$?
echo "== slow-client drill: $(( $(date +%s) - started )) s, exit $status"
exit "$status"
