#!/usr/bin/env bash
# The events summary against the shared yardstick (../shared/bench/bare/README.md): the service as
# shipped (gunicorn -c gunicorn.conf.py core.wsgi:application) beside the bare Django project under
# the same worker settings, wrk -t2 -c8 in interleaved rounds; the ratio of each round uses the
# mean of the bare runs on either side of it. Target (issue 14): >= 0.15 of the bare view.
#   bench/summary_throughput.sh [rounds]     # BENCH_PORT (18401), BARE_PORT (18402), BENCH_DURATION (3s)
source "$(dirname "$0")/common.sh"
command -v wrk >/dev/null || ensure_apt_packages wrk
PORT="${BENCH_PORT:-18401}"
BARE_PORT="${BARE_PORT:-18402}"
DURATION="${BENCH_DURATION:-3s}"
ROUNDS="${1:-8}"
BARE_DIR="$ROOT/../shared/bench/bare"
export BENCH_TOKEN="$(cat "$SWITCHYARD_VAR_DIR/token")"
export BENCH_MAX_USER="$(psql "$USERS_DATABASE_URL" -tAc 'SELECT max(id) FROM users_user')"
DJANGO_SETTINGS_MODULE=core.settings BIND="127.0.0.1:$PORT" \
  gunicorn -c gunicorn.conf.py core.wsgi:application >"$SWITCHYARD_VAR_DIR/summary-gunicorn.log" 2>&1 &
SERVICE=$!
# The bare project with its own settings, and not this folder's gunicorn.conf.py.
(cd "$BARE_DIR" && exec env -u DJANGO_SETTINGS_MODULE gunicorn -c /dev/null -b "127.0.0.1:$BARE_PORT" -w 2 -k gthread \
  --threads 4 wsgi_django:application) >"$SWITCHYARD_VAR_DIR/bare-gunicorn.log" 2>&1 &
BARE=$!
trap 'kill "$SERVICE" "$BARE" 2>/dev/null; wait "$SERVICE" "$BARE" 2>/dev/null' EXIT
for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$PORT/health" >/dev/null && curl -fs "http://127.0.0.1:$BARE_PORT/tiny/" >/dev/null && break; sleep 0.2; done
events="$(psql "$ANALYTICS_DATABASE_URL" -tAc 'SELECT count(*) FROM analytics_event')"
status="$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Token $BENCH_TOKEN" "http://127.0.0.1:$PORT/api/v1/analytics/events/summary/")"
[ "$status" = 200 ] || { echo "summary answers $status" >&2; exit 1; }

run() { # run BASE PATH -> "requests/s non2xx"
  BENCH_PATH="$2" wrk -t2 -c8 -d1s -s bench/random_path.lua "$1" >/dev/null
  BENCH_PATH="$2" wrk -t2 -c8 -d"$DURATION" -s bench/random_path.lua "$1" |
    awk '/^Requests\/sec/ {rps=$2} /Non-2xx/ {bad=$5} END {printf "%s %s\n", rps, (bad == "" ? 0 : bad)}'
}
RESULTS="$SWITCHYARD_VAR_DIR/summary-rounds.txt"
: >"$RESULTS"
echo "events summary vs bare view, $events events; wrk -t2 -c8 -d$DURATION, $ROUNDS interleaved rounds (shared 2-core machine)" >&2
for round in $(seq 1 "$((ROUNDS + 1))"); do
  read -r rps bad < <(run "http://127.0.0.1:$BARE_PORT" /tiny/)
  echo "$round bare $rps $bad" >>"$RESULTS"; echo "round $round bare $rps req/s" >&2
  [ "$round" -gt "$ROUNDS" ] && break
  read -r rps bad < <(run "http://127.0.0.1:$PORT" /api/v1/analytics/events/summary/)
  echo "$round summary $rps $bad" >>"$RESULTS"; echo "round $round summary $rps req/s (non-2xx $bad)" >&2
done
python - "$RESULTS" <<'PY'
import statistics, sys
rounds = {}
bad = 0
for line in open(sys.argv[1]):
    r, name, rps, non2xx = line.split()
    rounds.setdefault(int(r), {})[name] = float(rps)
    bad += int(non2xx)
ratios = [got["summary"] / ((got["bare"] + rounds[r + 1]["bare"]) / 2) for r, got in sorted(rounds.items()) if "summary" in got]
summary = [g["summary"] for g in rounds.values() if "summary" in g]
bare = [g["bare"] for g in rounds.values()]
median = statistics.median(ratios)
print(f"events summary / bare = {median:.3f} median of {len(ratios)} rounds (min {min(ratios):.3f}, max {max(ratios):.3f}; "
      f"summary {min(summary):.0f}-{max(summary):.0f} req/s, bare {min(bare):.0f}-{max(bare):.0f} req/s) "
      f"target >= 0.15: {'met' if median >= 0.15 else 'MISSED'}")
if bad:
    print(f"WARNING: {bad} non-2xx answers: the figures above are not valid")
PY
