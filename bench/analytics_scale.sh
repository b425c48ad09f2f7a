#!/usr/bin/env bash
# Analytics at 1,000,000 and 10,000,000 events in one run (issue 14; takes ~30 min on 2 shared cores):
#   bench/analytics_scale.sh [runs]      # SWITCHYARD_DB_PREFIX defaults to sy_agg_bench
# Seeds 1M events, measures; seeds 10M, measures; converts 10M rows from a plain table (timed);
# times the removal of a month of 1,000,000 events before (batched DELETE) and after (DROP).
source "$(dirname "$0")/common.sh"
RUNS="${1:-30}"
python manage.py migrate_all >/dev/null
python manage.py analytics_partitions --convert --ensure-ahead 3  # a no-op when already partitioned
python bench/seed_bench.py --reset --events "${SMALL:-1000000}"
python bench/analytics_scale.py measure 1M "$RUNS"
bench/summary_throughput.sh
python bench/seed_bench.py --reset --events "${LARGE:-10000000}"
python bench/analytics_scale.py measure 10M "$RUNS"
bench/summary_throughput.sh
python bench/analytics_scale.py convert
python bench/analytics_scale.py measure 10M "$RUNS"
python bench/analytics_scale.py retention
