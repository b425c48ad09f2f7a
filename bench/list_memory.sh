#!/usr/bin/env bash
# Largest list answers and worker memory (bench/list_memory.py): the service as shipped
# (gunicorn.conf.py, 2 workers by default) on real PostgreSQL databases of its own prefix, filled
# with maximal posts, then 1,000 requests for the posts list's largest page; each worker's RSS at
# the start, after a warm-up and at the end.
#   bench/list_memory.sh
#   SWITCHYARD_DB_PREFIX=sy_list_bench LIST_MEMORY_PORT=18610 WEB_CONCURRENCY=1 bench/list_memory.sh
export SWITCHYARD_DB_PREFIX="${SWITCHYARD_DB_PREFIX:-sy_list_bench}"
source "$(dirname "$0")/common.sh"
python manage.py migrate_all >/dev/null
python manage.py ensure_legacy_table >/dev/null
exec python bench/list_memory.py
