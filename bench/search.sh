#!/usr/bin/env bash
# Search of posts at scale (bench/search.py): bench/search.sh [--posts 1000000] [--triples 200] [--reset] [--drop]
# Its own databases (sy_searchbench*, large: --drop removes them at the end).
export SWITCHYARD_DB_PREFIX="${SWITCHYARD_DB_PREFIX:-sy_searchbench}"
export SWITCHYARD_VAR_DIR="${SWITCHYARD_VAR_DIR:-$(cd "$(dirname "$0")/.." && pwd)/var/searchbench}"
source "$(dirname "$0")/common.sh"
python bench/search.py "$@" 2> >(grep -v '"level"' >&2)
