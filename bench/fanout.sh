#!/usr/bin/env bash
# The dashboard with per-source delays in the database, concurrent vs sequential: bench/fanout.sh [--runs N]
source "$(dirname "$0")/common.sh"
python bench/fanout.py "$@"
