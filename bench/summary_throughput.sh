#!/usr/bin/env bash
# The events summary against the shared yardstick (issue 14, target >= 0.15 of the bare view):
# bench/throughput.sh limited to that endpoint, in the default configuration (no CACHE_URL) unless
# BENCH_CACHE_URL says otherwise. Same rounds, bracketing and report as every other endpoint.
#   bench/summary_throughput.sh [rounds]     # 8 rounds by default; output bench/results/summary.json
set -euo pipefail
export BENCH_ONLY=events_summary BENCH_ROUNDS="${1:-8}" BENCH_CACHE_URL="${BENCH_CACHE_URL:-none}"
exec "$(dirname "$0")/throughput.sh" summary
