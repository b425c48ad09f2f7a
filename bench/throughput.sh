#!/usr/bin/env bash
# Throughput under gunicorn (2 workers, gthread, pooled connections) with wrk on loopback:
# the dashboard on random users, the posts list (page_size=50) and, as the reference, a bare
# Django view returning a small constant JSON dict, served by the same gunicorn settings
# (bench/settings.py adds it to the URLs for the benchmark only).
#   bench/throughput.sh                 # 12 interleaved rounds of wrk -t2 -c8 -d2s per endpoint
#   BENCH_DURATION=5s BENCH_ROUNDS=5 bench/throughput.sh
# Targets: dashboard >= 15% of the bare view's requests/s, posts list >= 10%.
source "$(dirname "$0")/common.sh"
command -v wrk >/dev/null || ensure_apt_packages wrk
PORT="${BENCH_PORT:-8765}"
DURATION="${BENCH_DURATION:-2s}"
THREADS="${BENCH_GUNICORN_THREADS:-4}"
ROUNDS="${BENCH_ROUNDS:-12}"
export BENCH_TOKEN="$(cat "$SWITCHYARD_VAR_DIR/token")"
export BENCH_MAX_USER="$(psql "$USERS_DATABASE_URL" -tAc 'SELECT max(id) FROM users_user')"
BASE="http://127.0.0.1:$PORT"

gunicorn core.wsgi:application --workers 2 --worker-class gthread --threads "$THREADS" \
  --bind "127.0.0.1:$PORT" --log-level warning --access-logfile - --access-logformat '' >/dev/null \
  2>"$SWITCHYARD_VAR_DIR/gunicorn.log" &
GUNICORN=$!
trap 'kill "$GUNICORN" 2>/dev/null; wait "$GUNICORN" 2>/dev/null' EXIT
for _ in $(seq 1 100); do curl -fs "$BASE/health" >/dev/null && break; sleep 0.1; done

# run PATH: 1 s unmeasured (the switch from another endpoint settles), then wrk for DURATION;
# prints "requests/s non-2xx p50 p99".
run() {
  local out
  BENCH_PATH="$1" wrk -t2 -c8 -d1s -s bench/random_path.lua "$BASE" >/dev/null
  out="$(BENCH_PATH="$1" wrk -t2 -c8 -d"$DURATION" --latency -s bench/random_path.lua "$BASE")"
  awk '/^Requests\/sec/ {rps=$2} /Non-2xx/ {bad=$5} $1 == "50%" {p50=$2} $1 == "99%" {p99=$2}
       END {printf "%s %s %s %s\n", rps, (bad == "" ? 0 : bad), p50, p99}' <<<"$out"
}

status_of() { curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Token $BENCH_TOKEN" "$BASE$1"; }

# The machine's speed moves by a factor of two within seconds (shared cores), so the endpoints
# are measured in interleaved rounds (bare, dashboard, posts, bare, ...), one more bare run
# closes the last round, and each round's ratios use the mean of the bare figures on either side
# of it (the bare runs bracket the others, cancelling a drift); the median round is the result.
ENDPOINTS=("bare|/bench/bare/" "dashboard|/api/v1/users/{id}/dashboard/")
posts_status="$(status_of '/api/v1/posts/?page_size=50')"
if [ "$posts_status" = 200 ]; then
  ENDPOINTS+=("posts|/api/v1/posts/?page_size=50")
else
  echo "posts list: GET /api/v1/posts/?page_size=50 answers $posts_status on this branch; not measured" >&2
fi
echo "throughput: gunicorn 2 workers gthread x$THREADS, wrk -t2 -c8 -d$DURATION x $ROUNDS interleaved rounds, loopback" >&2
for entry in "${ENDPOINTS[@]}"; do  # warm-up: every worker connected, every code path loaded
  BENCH_PATH="${entry#*|}" wrk -t2 -c8 -d2s -s bench/random_path.lua "$BASE" >/dev/null
done
RESULTS="$SWITCHYARD_VAR_DIR/throughput-rounds.txt"
: >"$RESULTS"
for round in $(seq 1 "$((ROUNDS + 1))"); do
  for entry in "${ENDPOINTS[@]}"; do
    name="${entry%%|*}"
    [ "$round" -gt "$ROUNDS" ] && [ "$name" != bare ] && continue  # the closing bare run
    read -r rps bad p50 p99 < <(run "${entry#*|}")
    printf 'round %s  %-10s %10s req/s   p50 %-9s p99 %-9s non-2xx %s\n' "$round" "$name" "$rps" "$p50" "$p99" "$bad" >&2
    echo "$round $name $rps $bad" >>"$RESULTS"
  done
done
python - "$RESULTS" <<'PY'
import statistics, sys
rounds: dict[int, dict[str, float]] = {}
bad = 0
for line in open(sys.argv[1]):
    r, name, rps, non2xx = line.split()
    rounds.setdefault(int(r), {})[name] = float(rps)
    bad += int(non2xx)
targets = {"dashboard": 0.15, "posts": 0.10}
def bracket(r: int) -> float:
    """The bare figure around round r: the mean of its own (before) and the next round's (after)."""
    after = rounds.get(r + 1, {}).get("bare")
    return (rounds[r]["bare"] + after) / 2 if after else rounds[r]["bare"]
for name, target in targets.items():
    ratios = [got[name] / bracket(r) for r, got in sorted(rounds.items()) if name in got]
    if not ratios:
        continue
    rps = [got[name] for got in rounds.values() if name in got]
    bare = [got["bare"] for got in rounds.values()]
    median = statistics.median(ratios)
    print(
        f"{name} / bare = {median:.1%} median of {len(ratios)} rounds "
        f"({', '.join(f'{x:.1%}' for x in ratios)}; {name} {min(rps):.0f}-{max(rps):.0f} req/s, "
        f"bare {min(bare):.0f}-{max(bare):.0f} req/s)  target >= {target:.0%}: "
        f"{'met' if median >= target else 'MISSED'}"
    )
if bad:
    print(f"WARNING: {bad} non-2xx answers: the figures above are not valid")
PY
