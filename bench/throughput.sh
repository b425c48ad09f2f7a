#!/usr/bin/env bash
# Throughput under gunicorn (2 workers, gthread, pooled connections) with wrk on loopback:
# the dashboard on random users, the posts list (page_size=50) and, as the reference, a bare
# Django view returning a small constant JSON dict, served by the same gunicorn settings
# (bench/settings.py adds it to the URLs for the benchmark only).
#   bench/throughput.sh                 # wrk -t2 -c8 -d10s per endpoint
#   BENCH_DURATION=5s bench/throughput.sh
# Targets: dashboard >= 15% of the bare view's requests/s, posts list >= 10%.
source "$(dirname "$0")/common.sh"
command -v wrk >/dev/null || ensure_apt_packages wrk
PORT="${BENCH_PORT:-8765}"
DURATION="${BENCH_DURATION:-10s}"
THREADS="${BENCH_GUNICORN_THREADS:-4}"
export BENCH_TOKEN="$(cat "$SWITCHYARD_VAR_DIR/token")"
export BENCH_MAX_USER="$(psql "$USERS_DATABASE_URL" -tAc 'SELECT max(id) FROM users_user')"
BASE="http://127.0.0.1:$PORT"

gunicorn core.wsgi:application --workers 2 --worker-class gthread --threads "$THREADS" \
  --bind "127.0.0.1:$PORT" --log-level warning --access-logfile - --access-logformat '' >/dev/null \
  2>"$SWITCHYARD_VAR_DIR/gunicorn.log" &
GUNICORN=$!
trap 'kill "$GUNICORN" 2>/dev/null; wait "$GUNICORN" 2>/dev/null' EXIT
for _ in $(seq 1 100); do curl -fs "$BASE/health" >/dev/null && break; sleep 0.1; done

# run NAME PATH: a 2 s warm-up, then the measured run; prints requests/s and non-2xx count.
run() {
  local name="$1" path="$2"
  BENCH_PATH="$path" wrk -t2 -c8 -d2s -s bench/random_path.lua "$BASE" >/dev/null
  local out
  out="$(BENCH_PATH="$path" wrk -t2 -c8 -d"$DURATION" --latency -s bench/random_path.lua "$BASE")"
  local rps non2xx p50 p99
  rps="$(awk '/^Requests\/sec/ {print $2}' <<<"$out")"
  non2xx="$(awk '/Non-2xx/ {print $5}' <<<"$out")"
  p50="$(awk '$1 == "50%" {print $2}' <<<"$out")"
  p99="$(awk '$1 == "99%" {print $2}' <<<"$out")"
  printf '%-34s %10s req/s   p50 %-9s p99 %-9s non-2xx %s\n' "$name" "$rps" "$p50" "$p99" "${non2xx:-0}" >&2
  echo "$rps ${non2xx:-0}"
}

status_of() { curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Token $BENCH_TOKEN" "$BASE$1"; }

echo "throughput: gunicorn 2 workers gthread x$THREADS, wrk -t2 -c8 -d$DURATION, loopback; shared 2-core machine" >&2
read -r bare _ < <(run "bare Django JSON view (reference)" "/bench/bare/")
read -r dash dash_bad < <(run "dashboard, random users" "/api/v1/users/{id}/dashboard/")
posts_status="$(status_of '/api/v1/posts/?page_size=50')"
if [ "$posts_status" = 200 ]; then
  read -r posts posts_bad < <(run "posts list, page_size=50" "/api/v1/posts/?page_size=50")
else
  posts=""; echo "posts list: GET /api/v1/posts/?page_size=50 answers $posts_status on this branch; not measured" >&2
fi
python - "$bare" "$dash" "$posts" <<'PY'
import sys
bare, dash, posts = (float(x) if x else None for x in sys.argv[1:4])
print(f"dashboard / bare = {dash / bare:.1%}  (target >= 15%)")
if posts is not None:
    print(f"posts list / bare = {posts / bare:.1%}  (target >= 10%)")
PY
