#!/usr/bin/env bash
# Create and fill the benchmark databases (sy_agg_bench*): bench/seed.sh [--reset] [--users N ...]
source "$(dirname "$0")/common.sh"
python bench/seed_bench.py "$@"
