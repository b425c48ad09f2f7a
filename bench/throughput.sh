#!/usr/bin/env bash
# The yardstick (issue 12): requests/s of every endpoint as a ratio to the bare Django project of
# ../shared/bench/bare/ (no middleware, no database), both served by gunicorn 2 workers x 4 gthread
# threads in the same run, the service AS SHIPPED (`gunicorn -c gunicorn.conf.py`, its own
# settings, access log on). wrk -t2 -c8 on loopback, rounds interleaved (bare, every endpoint,
# bare, ...); each round's ratio uses the mean of the bare runs before and after it; the median of
# the rounds is reported with the spread (min-max). Beside it, the same ratio of the machine's CPU
# time per request (all of /proc/stat but idle: wrk, servers, databases, kernel), which a run that
# leaves a core idle (the workers' uneven share of the 8 connections) does not move.
#   bench/throughput.sh [LABEL]          # writes bench/results/LABEL.json (default: "run")
#   BENCH_ROUNDS=3 BENCH_DURATION=3s BENCH_ONLY="user posts_list" bench/throughput.sh after
#   BENCH_COMPARE_ENV="DB_POOL=0" bench/throughput.sh pool-vs-persistent
#       # a second service (port+2) with these variables, every endpoint measured on both,
#       # interleaved in the same rounds (its figures are named "<endpoint>~alt")
#   git worktree add ../before HEAD~3 && BENCH_COMPARE_TREE=../before bench/throughput.sh a-vs-b
#       # the same, the second service being the code of that other checkout (an earlier commit),
#       # served by this checkout's virtualenv: a change measured against what it replaced in the
#       # same rounds, where two runs apart differ by more than most changes (bench/README.md)
# bench/chart.py draws bench/throughput.svg from bench/results/before.json and after.json.
# Needs the bench data (bench/seed.sh --posts 100000). CACHE_URL: BENCH_CACHE_URL (Redis, the
# configuration of more than one process; "none" for the database cache).
source "$(dirname "$0")/common.sh"
command -v wrk >/dev/null || ensure_apt_packages wrk
LABEL="${1:-run}"
PORT="${BENCH_PORT:-18601}"
BARE_PORT="${BENCH_BARE_PORT:-18602}"
DURATION="${BENCH_DURATION:-3s}"
ROUNDS="${BENCH_ROUNDS:-3}"
BARE_DIR="${BENCH_BARE_DIR:-$ROOT/../shared/bench/bare}"
FLOOR_PORT="${BENCH_FLOOR_PORT:-18604}"
FLOOR_MW_PORT="${BENCH_FLOOR_MW_PORT:-18605}"
export BENCH_TOKEN="$(cat "$SWITCHYARD_VAR_DIR/token")"
MAX_USER="$(psql "$USERS_DATABASE_URL" -tAc 'SELECT max(id) FROM users_user')"
MAX_POST="$(psql "$DATABASE_URL" -tAc "SELECT max(id) FROM blog_post WHERE title <> 'yardstick'")"
OUT_DIR="$ROOT/bench/results"
mkdir -p "$OUT_DIR"
WORK="$SWITCHYARD_VAR_DIR/throughput"
mkdir -p "$WORK"
BASE="http://127.0.0.1:$PORT"
BARE="http://127.0.0.1:$BARE_PORT"
FLOOR="http://127.0.0.1:$FLOOR_PORT"
FLOOR_MW="http://127.0.0.1:$FLOOR_MW_PORT"
CACHE="${BENCH_CACHE_URL:-redis://127.0.0.1:6379/12}"

# Bodies: a post by a random author; 1,000 events of a type of their own (deleted afterwards).
echo '{"title": "yardstick", "content": "A post of the benchmark.", "author_id": {id}}' >"$WORK/post.json"
python - "$WORK/events.json" <<'PY'
import json, sys
events = [{"event_type": "yardstick", "user_id": None, "session_id": f"s{i // 20}",
           "timestamp": "2026-11-01T10:00:00Z", "data": {"n": i}} for i in range(1000)]
json.dump({"events": events}, open(sys.argv[1], "w"))
PY

# name|server|method|path|max id|body file
ENDPOINTS=(
  "bare_drf|bare|GET|/drf/|1|"
  "health|svc|GET|/health|1|"
  "user|svc|GET|/api/v1/users/{id}/|$MAX_USER|"
  "post|svc|GET|/api/v1/posts/{id}/|$MAX_POST|"
  "users_list|svc|GET|/api/v1/users/?page_size=50|1|"
  "posts_list|svc|GET|/api/v1/posts/?page_size=20|1|"
  "events_list|svc|GET|/api/v1/analytics/events/?page_size=50|1|"
  "events_summary|svc|GET|/api/v1/analytics/events/summary/|1|"
  "customers_list|svc|GET|/api/v1/legacy/customers/?page_size=50|1|"
  "dashboard|svc|GET|/api/v1/users/{id}/dashboard/|$MAX_USER|"
  "user_stats|svc|GET|/api/v1/users/{id}/stats/|100|"
  "stats|svc|GET|/api/v1/stats/|1|"
  "post_create|svc|POST|/api/v1/posts/|$MAX_USER|$WORK/post.json"
  "events_batch|svc|POST|/api/v1/analytics/events/batch/|1|$WORK/events.json"
  # The floor (bench/floor/): a read by primary key and a page of 50 users with nothing else, on
  # Django's cursor (JsonResponse) and in a bare DRF APIView. Not the service: what any Django
  # service reading this database pays, against which the targets can be judged.
  "floor_read|floor|GET|/sql/{id}/|$MAX_USER|"
  "floor_drf_read|floor|GET|/drf/{id}/|$MAX_USER|"
  "floor_list|floor|GET|/sql/list/|1|"
  "floor_drf_list|floor|GET|/drf/list/|1|"
  "floor_mw_read|floormw|GET|/drf/{id}/|$MAX_USER|"
  "floor_mw_list|floormw|GET|/drf/list/|1|"
)
if [ -n "${BENCH_ONLY:-}" ]; then
  keep=()
  for entry in "${ENDPOINTS[@]}"; do [[ " $BENCH_ONLY " == *" ${entry%%|*} "* ]] && keep+=("$entry"); done
  ENDPOINTS=("${keep[@]}")
fi

if [ -n "${BENCH_COMPARE_ENV:-}" ] || [ -n "${BENCH_COMPARE_TREE:-}" ]; then
  # Two services at once hold twice the connections: with the aggregates' fan-out (a connection
  # per alias and fan-out thread) both pass PostgreSQL's default max_connections of 100, and the
  # answers turn into 503s and degraded parts (measured: session 13, bench/README.md).
  if [ "$(psql "$DATABASE_URL" -tAc 'SHOW max_connections')" -lt 250 ]; then
    for entry in "${ENDPOINTS[@]}"; do
      case "${entry%%|*}" in dashboard | user_stats | stats)
        echo "BENCH_COMPARE_*: two services with the fan-out need max_connections >= 250;" \
          "measure dashboard, user_stats and stats without a compared service (or raise it)" >&2
        exit 2 ;;
      esac
    done
  fi
fi
(cd "$BARE_DIR" && DJANGO_SETTINGS_MODULE=bare_settings exec "$ROOT/.venv/bin/gunicorn" -b "127.0.0.1:$BARE_PORT" -w 2 -k gthread --threads 4 \
  wsgi_django:application) 2>"$WORK/bare.log" &
BARE_PID=$!
(cd "$ROOT/bench/floor" && DJANGO_SETTINGS_MODULE=floor_settings exec "$ROOT/.venv/bin/gunicorn" -b "127.0.0.1:$FLOOR_PORT" \
  -w 2 -k gthread --threads 4 wsgi_floor:application) 2>"$WORK/floor.log" &
FLOOR_PID=$!
# The floor's bare DRF views behind the service's own settings and middleware, served as the
# service is (bench/floor/floor_mw_settings.py).
env PYTHONPATH="$ROOT/bench/floor:$ROOT" DJANGO_SETTINGS_MODULE=floor_mw_settings BIND="127.0.0.1:$FLOOR_MW_PORT" \
  gunicorn -c gunicorn.conf.py 2>"$WORK/floor-mw.log" &
FLOOR_MW_PID=$!
CACHE_ENV=(); [ "$CACHE" != none ] && CACHE_ENV=(CACHE_URL="$CACHE")
env DJANGO_SETTINGS_MODULE=core.settings BIND="127.0.0.1:$PORT" "${CACHE_ENV[@]}" \
  gunicorn -c gunicorn.conf.py 2>"$WORK/service.log" &
SVC_PID=$!
ALT_PID=
if [ -n "${BENCH_COMPARE_ENV:-}" ] || [ -n "${BENCH_COMPARE_TREE:-}" ]; then
  ALT="http://127.0.0.1:$((PORT + 2))"
  ALT_TREE="$(cd "${BENCH_COMPARE_TREE:-$ROOT}" && pwd)"
  # shellcheck disable=SC2086 # word splitting wanted: VAR=value pairs
  (cd "$ALT_TREE" && exec env PYTHONPATH="$ALT_TREE" DJANGO_SETTINGS_MODULE=core.settings BIND="127.0.0.1:$((PORT + 2))" \
    "${CACHE_ENV[@]}" ${BENCH_COMPARE_ENV:-} "$ROOT/.venv/bin/gunicorn" -c gunicorn.conf.py) 2>"$WORK/service-alt.log" &
  ALT_PID=$!
  with_alt=()
  for entry in "${ENDPOINTS[@]}"; do
    with_alt+=("$entry")
    IFS='|' read -r name server rest <<<"$entry"
    [ "$server" = svc ] && with_alt+=("$name~alt|alt|$rest")
  done
  ENDPOINTS=("${with_alt[@]}")
fi
cleanup() {
  kill "$SVC_PID" "$BARE_PID" "$FLOOR_PID" "$FLOOR_MW_PID" $ALT_PID 2>/dev/null || true
  wait "$SVC_PID" "$BARE_PID" "$FLOOR_PID" "$FLOOR_MW_PID" $ALT_PID 2>/dev/null || true
  psql "$DATABASE_URL" -qtAc "DELETE FROM blog_post WHERE title = 'yardstick'" >/dev/null || true
  psql "$ANALYTICS_DATABASE_URL" -qtAc "DELETE FROM analytics_event WHERE event_type = 'yardstick'" >/dev/null || true
}
trap cleanup EXIT
for _ in $(seq 1 150); do
  curl -fs "$BASE/health" >/dev/null && curl -fs "$BARE/tiny/" >/dev/null && curl -fs "$FLOOR/sql/1/" >/dev/null \
    && curl -fs "$FLOOR_MW/drf/1/" >/dev/null \
    && { [ -z "$ALT_PID" ] || curl -fs "$ALT/health" >/dev/null; } && break
  sleep 0.2
done

# wrk_for ENTRY DURATION [--latency]: runs wrk on the endpoint, prints wrk's report.
wrk_for() {
  local name server method path max body url
  IFS='|' read -r name server method path max body <<<"$1"
  url="$BASE"; [ "$server" = bare ] && url="$BARE"; [ "$server" = alt ] && url="$ALT"; [ "$server" = floor ] && url="$FLOOR"; [ "$server" = floormw ] && url="$FLOOR_MW"
  BENCH_PATH="$path" BENCH_METHOD="$method" BENCH_MAX_ID="$max" BENCH_BODY_FILE="$body" \
    wrk -t2 -c8 -d"$2" ${3:-} -s bench/random_path.lua "$url"
}
# busy_ticks: the machine's busy CPU time so far, in clock ticks (every CPU of /proc/stat's "cpu"
# line but idle and iowait: wrk, the servers, the databases and the kernel's share of them alike).
busy_ticks() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8 + $9; exit}' /proc/stat; }
# run ENTRY: 1 s unmeasured (the switch from another endpoint settles), then DURATION measured;
# prints "requests/s non-2xx requests busy-ticks" (busy-ticks: the machine's CPU time of the run).
run() {
  local before after
  wrk_for "$1" 1s >/dev/null
  before="$(busy_ticks)"
  wrk_for "$1" "$DURATION" >"$WORK/wrk.out"
  after="$(busy_ticks)"
  awk -v busy="$((after - before))" '/^Requests\/sec/ {rps=$2} / requests in / {n=$1} /Non-2xx/ {bad=$5} /Socket errors/ {bad += 1}
    END {printf "%s %s %s %s\n", rps, (bad == "" ? 0 : bad), n, busy}' "$WORK/wrk.out"
}

for entry in "${ENDPOINTS[@]}"; do  # every endpoint answers 2xx before anything is measured
  IFS='|' read -r name server method path max body <<<"$entry"
  url="$BASE"; [ "$server" = bare ] && url="$BARE"; [ "$server" = alt ] && url="$ALT"; [ "$server" = floor ] && url="$FLOOR"; [ "$server" = floormw ] && url="$FLOOR_MW"
  data=()
  if [ -n "$body" ]; then
    sed 's/{id}/1/g' "$body" >"$WORK/check.json"
    data=(-H 'Content-Type: application/json' --data-binary "@$WORK/check.json")
  fi
  code="$(curl -s -o "$WORK/check.out" -w '%{http_code}' -X "$method" -H "Authorization: Token $BENCH_TOKEN" \
    "${data[@]}" "$url${path//\{id\}/1}")"
  case "$code" in 2??) ;; *) echo "$name: $method $path answers $code: $(head -c 300 "$WORK/check.out")" >&2; exit 1 ;; esac
done
echo "yardstick: gunicorn 2 workers x 4 gthread (bare: $BARE_DIR; service: gunicorn.conf.py, access log on," \
  "CACHE_URL=$CACHE), wrk -t2 -c8 -d$DURATION, $ROUNDS interleaved rounds, loopback" >&2
REFERENCE="bare|bare|GET|/tiny/|1|"
for entry in "$REFERENCE" "${ENDPOINTS[@]}"; do wrk_for "$entry" 2s >/dev/null; done  # warm-up
RESULTS="$WORK/rounds.txt"
: >"$RESULTS"
for round in $(seq 1 "$((ROUNDS + 1))"); do
  for entry in "$REFERENCE" "${ENDPOINTS[@]}"; do
    name="${entry%%|*}"
    [ "$round" -gt "$ROUNDS" ] && [ "$name" != bare ] && continue  # the closing bare run
    read -r rps bad requests busy < <(run "$entry")
    cpu_us=$(awk -v b="$busy" -v n="$requests" -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.0f", n ? b / hz / n * 1e6 : 0}')
    printf 'round %s  %-15s %10s req/s  %6s us of machine CPU a request  non-2xx %s\n' "$round" "$name" "$rps" "$cpu_us" "$bad" >&2
    echo "$round $name $rps $bad $cpu_us" >>"$RESULTS"
  done
done
python bench/throughput.py "$RESULTS" "$OUT_DIR/$LABEL.json" \
  --label "$LABEL" --commit "$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . ':!bench/results' || echo +)" \
  --setup "gunicorn 2x4 gthread, wrk -t2 -c8 -d$DURATION, $ROUNDS rounds, CACHE_URL=$CACHE, $(nproc) cores${BENCH_COMPARE_ENV:+, ~alt: $BENCH_COMPARE_ENV}${BENCH_COMPARE_TREE:+, ~alt: the code of $(git -C "$BENCH_COMPARE_TREE" rev-parse --short HEAD)}"
