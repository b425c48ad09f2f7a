#!/usr/bin/env bash
# Batch ingest through the API against raw COPY: bench/ingest.sh [--requests N] [--batch N]
source "$(dirname "$0")/common.sh"
PORT="${BENCH_PORT:-8765}"
gunicorn core.wsgi:application --workers 2 --worker-class gthread --threads 4 \
  --bind "127.0.0.1:$PORT" --log-level warning >/dev/null 2>"$SWITCHYARD_VAR_DIR/gunicorn-ingest.log" &
GUNICORN=$!
trap 'kill "$GUNICORN" 2>/dev/null; wait "$GUNICORN" 2>/dev/null' EXIT
for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$PORT/health" >/dev/null && break; sleep 0.1; done
python bench/ingest.py --base "127.0.0.1:$PORT" "$@"
