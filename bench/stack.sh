#!/usr/bin/env bash
# The yardstick through the whole stack: requests/s, p50 and p99 of the main endpoints through
# scripts/stack's topology (nginx, two gunicorn instances, PgBouncer in transaction mode, replica
# reads, Redis), at 8 and 64 connections, beside the bare Django view of ../shared/bench/bare/
# served through the same nginx: the stack's nginx gets a second server block (a bench copy of its
# configuration, reloaded with SIGHUP, put back on exit) in front of the bare project's gunicorn,
# as many instances, workers and threads as the service's. wrk on loopback, rounds interleaved
# (per number of connections: bare, every endpoint; one closing bare run), each endpoint's
# requests/s over the mean of the bare runs around it (bench/throughput.py's rule).
#   bench/stack.sh [LABEL]      # bench/results/stack-LABEL.json and bench/stack.svg (default: "run")
#   BENCH_ROUNDS=3 BENCH_DURATION=3s BENCH_CONNECTIONS="8 64" BENCH_ONLY="user posts_list" bench/stack.sh quick
# It starts the stack when it is not running (scripts/stack up, idempotent; STACK_DIR,
# STACK_PORT_BASE as there) and leaves it running (BENCH_STACK_DOWN=1: scripts/stack down at the
# end). It seeds the stack's databases with bench/seed_bench.py, straight to the primary (skipped
# when they hold the data already): BENCH_STACK_USERS (10000), BENCH_STACK_POSTS (20000),
# BENCH_STACK_EVENTS (200000), BENCH_STACK_CUSTOMERS (5000). The throttle stays as deployed (Redis,
# API_THROTTLE_RATE per token): the requests carry BENCH_STACK_TOKENS (64) tokens at random
# (bench/random_path.lua), so that no token's budget runs out. The bare view's nginx port:
# BENCH_STACK_BARE_PORT (18980). Each run also records the machine's 1-minute load average.
set -euo pipefail
source "$(dirname "$0")/../scripts/lib.sh"
cd "$ROOT"
command -v wrk >/dev/null || ensure_apt_packages wrk
LABEL="${1:-run}"
DURATION="${BENCH_DURATION:-3s}"
ROUNDS="${BENCH_ROUNDS:-3}"
CONNECTIONS="${BENCH_CONNECTIONS:-8 64}"
BARE_PORT="${BENCH_STACK_BARE_PORT:-18980}"
TOKENS="${BENCH_STACK_TOKENS:-64}"
# ../shared/bench/bare beside the checkout (for a git worktree: beside the main checkout)
BARE_DIR="${BENCH_BARE_DIR:-$ROOT/../shared/bench/bare}"
[ -n "${BENCH_BARE_DIR:-}" ] || [ -d "$BARE_DIR" ] \
  || BARE_DIR="$(cd "$(git rev-parse --git-common-dir)/.." && pwd)/../shared/bench/bare"
BARE_DIR="$(cd "$BARE_DIR" && pwd)"
STACK_DIR="${STACK_DIR:-$ROOT/var/stack}"
export STACK_DIR

scripts/stack up
eval "$(scripts/stack env)"
STACK_DIR="$(cd "$STACK_DIR" && pwd)"
PROXY_DIR="$STACK_DIR/proxy"
WORK="$STACK_DIR/bench"
mkdir -p "$WORK" "$ROOT/bench/results"
INSTANCES="$(sed -n 's/^STACK_INSTANCES=//p' "$STACK_DIR/ports.env")"
BASE="$SWITCHYARD_URL"
BARE="http://127.0.0.1:$BARE_PORT"
PY="$VENV/bin/python"

# ---- the data: bench/seed_bench.py straight to the primary (as the stack's migrations run) ----
in_primary_env() {
  env DB_PGBOUNCER=0 DATABASE_URL="$STACK_PRIMARY_URL" USERS_DATABASE_URL="$STACK_USERS_PRIMARY_URL" \
    ANALYTICS_DATABASE_URL="$STACK_ANALYTICS_PRIMARY_URL" DATABASE_REPLICA_URLS= USERS_DATABASE_REPLICA_URLS= \
    SWITCHYARD_VAR_DIR="$WORK" PYTHONPATH="$ROOT" "$@"
}
seed_started=$EPOCHREALTIME
in_primary_env "$PY" bench/seed_bench.py --users "${BENCH_STACK_USERS:-10000}" --posts "${BENCH_STACK_POSTS:-20000}" \
  --events "${BENCH_STACK_EVENTS:-200000}" --customers "${BENCH_STACK_CUSTOMERS:-5000}"
awk -v a="$seed_started" -v b="$EPOCHREALTIME" 'BEGIN { printf "==> seed: %.1f s\n", b - a }' >&2
# The replica serves the reads: wait until it has replayed everything the seed wrote.
primary_lsn="$(psql "$STACK_PRIMARY_URL" -XtAc 'SELECT pg_current_wal_lsn()')"
wait_for "the replica at $primary_lsn" psql "$DATABASE_REPLICA_URLS" -XtAc \
  "SELECT 1 / (pg_last_wal_replay_lsn() >= '$primary_lsn')::int"
MAX_USER="$(psql "$STACK_USERS_PRIMARY_URL" -XtAc 'SELECT max(id) FROM users_user')"
MAX_POST="$(psql "$STACK_PRIMARY_URL" -XtAc "SELECT max(id) FROM blog_post WHERE title <> 'yardstick'")"

# ---- the tokens (kept between runs while they are accepted) ----------------------------------
TOKEN_FILE="$WORK/tokens.txt"
token_ok() { [ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Token $1" "$BASE/api/v1/users/1/")" = 200 ]; }
if ! { [ -s "$TOKEN_FILE" ] && [ "$(wc -l <"$TOKEN_FILE")" = "$TOKENS" ] \
  && token_ok "$(head -1 "$TOKEN_FILE")" && token_ok "$(tail -1 "$TOKEN_FILE")"; }; then
  in_primary_env "$PY" bench/stack.py tokens "$TOKENS" "$TOKEN_FILE"
fi
export BENCH_TOKEN_FILE="$TOKEN_FILE"

# ---- the bare view: gunicorn instances as the service's, behind a server of the same nginx ----
echo '{"title": "yardstick", "content": "A post of the benchmark.", "author_id": {id}}' >"$WORK/post.json"
BARE_PIDS=()
sockets=()
for i in $(seq 1 "$INSTANCES"); do
  rm -f "$WORK/bare-$i.sock"
  (cd "$BARE_DIR" && DJANGO_SETTINGS_MODULE=bare_settings exec "$VENV/bin/gunicorn" -b "unix:$WORK/bare-$i.sock" \
    -w "${WEB_CONCURRENCY:-2}" -k gthread --threads "${GUNICORN_THREADS:-4}" wsgi_django:application) 2>"$WORK/bare-$i.log" &
  BARE_PIDS+=("$!")
  sockets+=("$WORK/bare-$i.sock")
done
NGINX_CONF="$PROXY_DIR/nginx.conf"
INCLUDE="    include $WORK/bare-server.conf;"
"$PY" bench/stack.py bare-server "$WORK/bare-server.conf" "127.0.0.1:$BARE_PORT" "${sockets[@]}"
nginx_reload() { # nginx_reload CONF: CONF checked, made the stack's nginx.conf, the master reloads it
  nginx -t -q -c "$1" -e "$WORK/nginx-test.log"
  cp "$1" "$NGINX_CONF"
  kill -HUP "$(cat "$PROXY_DIR/nginx.pid")"
}
grep -vxF "$INCLUDE" "$NGINX_CONF" >"$WORK/nginx.conf.stack"
awk -v inc="$INCLUDE" '{ print } /include .*\/switchyard\.conf;/ { print inc }' "$WORK/nginx.conf.stack" >"$WORK/nginx.conf.bench"
grep -qxF "$INCLUDE" "$WORK/nginx.conf.bench" || { echo "no switchyard.conf include in $NGINX_CONF" >&2; exit 1; }

cleanup() {
  local status=$?
  if [ -f "$WORK/nginx.conf.stack" ] && grep -qxF "$INCLUDE" "$NGINX_CONF"; then
    nginx_reload "$WORK/nginx.conf.stack" || echo "could not put back $NGINX_CONF: scripts/stack down and up" >&2
  fi
  kill "${BARE_PIDS[@]}" 2>/dev/null || true
  wait "${BARE_PIDS[@]}" 2>/dev/null || true
  psql "$STACK_PRIMARY_URL" -qXtAc "DELETE FROM blog_post WHERE title = 'yardstick'" >/dev/null || true
  if [ "${BENCH_STACK_DOWN:-0}" = 1 ]; then scripts/stack down || status=1; fi
  exit "$status"
}
trap cleanup EXIT
wait_for "the bare project's gunicorn" bash -c 'for s in "$@"; do test -S "$s" || exit 1; done' _ "${sockets[@]}"
nginx_reload "$WORK/nginx.conf.bench"
wait_for "the bare view through nginx on $BARE_PORT" curl -fs -o /dev/null "$BARE/tiny/"

# name|server|method|path|max id|body file
ENDPOINTS=(
  "health|svc|GET|/health|1|"
  "user|svc|GET|/api/v1/users/{id}/|$MAX_USER|"
  "post|svc|GET|/api/v1/posts/{id}/|$MAX_POST|"
  "users_list|svc|GET|/api/v1/users/?page_size=50|1|"
  "posts_list|svc|GET|/api/v1/posts/?page_size=50|1|"
  "dashboard|svc|GET|/api/v1/users/{id}/dashboard/|$MAX_USER|"
  "post_create|svc|POST|/api/v1/posts/|$MAX_USER|$WORK/post.json"
)
if [ -n "${BENCH_ONLY:-}" ]; then
  keep=()
  for entry in "${ENDPOINTS[@]}"; do [[ " $BENCH_ONLY " == *" ${entry%%|*} "* ]] && keep+=("$entry"); done
  ENDPOINTS=("${keep[@]}")
fi
REFERENCE="bare|bare|GET|/tiny/|1|"

token1="$(head -1 "$TOKEN_FILE")"
for entry in "$REFERENCE" "${ENDPOINTS[@]}"; do  # every endpoint answers 2xx before anything is measured
  IFS='|' read -r name server method path max body <<<"$entry"
  url="$BASE"; [ "$server" = bare ] && url="$BARE"
  data=()
  if [ -n "$body" ]; then
    sed 's/{id}/1/g' "$body" >"$WORK/check.json"
    data=(-H 'Content-Type: application/json' --data-binary "@$WORK/check.json")
  fi
  code="$(curl -s -o "$WORK/check.out" -w '%{http_code}' -X "$method" -H "Authorization: Token $token1" \
    "${data[@]}" "$url${path//\{id\}/1}")"
  case "$code" in 2??) ;; *) echo "$name: $method $path answers $code: $(head -c 300 "$WORK/check.out")" >&2; exit 1 ;; esac
done

# wrk_for ENTRY CONNECTIONS DURATION [--latency]
wrk_for() {
  local name server method path max body url
  IFS='|' read -r name server method path max body <<<"$1"
  url="$BASE"; [ "$server" = bare ] && url="$BARE"
  BENCH_PATH="$path" BENCH_METHOD="$method" BENCH_MAX_ID="$max" BENCH_BODY_FILE="$body" \
    wrk -t2 -c"$2" -d"$3" --timeout 10s ${4:-} -s bench/random_path.lua "$url"
}
# run ENTRY CONNECTIONS: 1 s unmeasured, then DURATION measured; prints
# "requests/s non-2xx requests p50-ms p99-ms load-1min".
run() {
  local load
  wrk_for "$1" "$2" 1s >/dev/null
  load="$(cut -d' ' -f1 /proc/loadavg)"
  wrk_for "$1" "$2" "$DURATION" --latency >"$WORK/wrk.out"
  awk -v la="$load" '
    function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /m$/) return v * 60000; return v * 1000 }
    /^Requests\/sec/ {rps=$2} / requests in / {n=$1} /Non-2xx/ {bad=$5} /Socket errors/ {bad += 1}
    $1 == "50%" {p50=ms($2)} $1 == "99%" {p99=ms($2)}
    END {printf "%s %s %s %.3f %.3f %s\n", rps, (bad == "" ? 0 : bad), n, p50, p99, la}' "$WORK/wrk.out"
}

echo "yardstick through the stack ($STACK_DIR): nginx -> $INSTANCES instance(s) x ${WEB_CONCURRENCY:-2} workers" \
  "x ${GUNICORN_THREADS:-4} gthread -> PgBouncer / replica / Redis; bare view: the same nginx -> $INSTANCES bare" \
  "instance(s); wrk -t2 -c{$CONNECTIONS} -d$DURATION, $ROUNDS interleaved rounds, $TOKENS tokens;" \
  "load average now: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores" >&2
for conn in $CONNECTIONS; do
  for entry in "$REFERENCE" "${ENDPOINTS[@]}"; do wrk_for "$entry" "$conn" 2s >/dev/null; done  # warm-up
done
RESULTS="$WORK/rounds.txt"
: >"$RESULTS"
for round in $(seq 1 "$((ROUNDS + 1))"); do
  for conn in $CONNECTIONS; do
    for entry in "$REFERENCE" "${ENDPOINTS[@]}"; do
      name="${entry%%|*}"
      [ "$round" -gt "$ROUNDS" ] && [ "$name" != bare ] && continue  # the closing bare run
      read -r rps bad requests p50 p99 load < <(run "$entry" "$conn")
      printf 'round %s  c%-3s %-12s %9s req/s  p50 %8s ms  p99 %8s ms  non-2xx %s  load %s\n' \
        "$round" "$conn" "$name" "$rps" "$p50" "$p99" "$bad" "$load" >&2
      echo "$round $conn $name $rps $bad $requests $p50 $p99 $load" >>"$RESULTS"
    done
  done
done
OUT="$ROOT/bench/results/stack-$LABEL.json"
status=0
"$PY" bench/stack.py analyse "$RESULTS" "$OUT" --label "$LABEL" \
  --commit "$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . ':!bench/results' ':!bench/stack.svg' || echo +)" \
  --setup "the stack: nginx (worker_processes 2), $INSTANCES gunicorn instances x ${WEB_CONCURRENCY:-2}x${GUNICORN_THREADS:-4} gthread, PgBouncer transaction pool, replica reads, Redis cache and throttle; bare: $INSTANCES instances x ${WEB_CONCURRENCY:-2}x${GUNICORN_THREADS:-4} behind the same nginx; wrk -t2 -c{${CONNECTIONS// /,}} -d$DURATION, $ROUNDS rounds, $TOKENS tokens, $(nproc) cores" \
  || status=$?
"$PY" bench/stack.py chart "$OUT" >"$ROOT/bench/stack.svg"
echo "chart: bench/stack.svg" >&2
exit "$status"
