#!/usr/bin/env bash
# CI against the deployed shape: `scripts/stack up` once (nginx, two gunicorn instances, PgBouncer,
# PostgreSQL and its streaming replica, MariaDB, Redis, the scheduler, Prometheus), then through
# nginx:
#   1. the contract suite (.ci/contract.sh with CONTRACT_BASE_URL): schemathesis, the TypeScript and
#      Python clients' smoke scripts, /api/docs/ in headless Chromium;
#   2. the cross-origin frontend in headless Chromium (tests/ops/test_stack_cross_origin.py), its
#      origin in the stack's CORS_ALLOWED_ORIGINS;
#   3. the slow-client drill, short form, against the stack's nginx (bench/slowclients.py --target-port);
#   4. one instance killed: SIGKILL to web-1's gunicorn master under reads and writes (bench/killone.py);
# then `scripts/stack down`, which must leave no process and no port. Each part prints its time; the
# first that fails stops the step (exit 1; STACK_DRILLS_KEEP_GOING=1 runs the rest first), and
# `down` runs whatever happened (trap).
# The fault drill (bench/faults.sh) keeps its own servers: docs/operations.md says why.
# Environment: STACK_DRILLS_DIR (var/ci-stack-drills, removed first; /var/tmp when a directory above
# the checkout is closed to the postgres and mysql users), STACK_DRILLS_PORT_BASE (18800: the stack
# on BASE..BASE+8, the frontend page on BASE+9), CONTRACT_MAX_EXAMPLES (25).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
bootstrap_venv requirements-dev.txt
source "$VENV/bin/activate"

above_open=1
dir="$ROOT"
while [ "$dir" != / ]; do
  [ "$(( 0$(stat -c %a "$dir") & 1 ))" = 1 ] || above_open=0
  dir="$(dirname "$dir")"
done
if [ "$above_open" = 1 ]; then default_dir="$ROOT/var/ci-stack-drills"; else default_dir="/var/tmp/switchyard-stack-drills-$(id -u)"; fi
export STACK_DIR="${STACK_DRILLS_DIR:-$default_dir}"
BASE="${STACK_DRILLS_PORT_BASE:-18800}"
export STACK_PORT_BASE="$BASE"
FRONTEND_PORT=$((BASE + 9))
# What the drills ask of the instances: the frontend's origin, and a request budget per token that
# schemathesis' thousands of requests never reach.
export CORS_ALLOWED_ORIGINS="http://127.0.0.1:$FRONTEND_PORT"
export API_THROTTLE_RATE="1000000/minute"

STEP_STARTED=$EPOCHREALTIME
part_started=$EPOCHREALTIME
part() { part_started=$EPOCHREALTIME; echo "== stack drills: $*"; }
took() { awk -v w="$1" -v a="$part_started" -v b="$EPOCHREALTIME" 'BEGIN { printf "== stack drills: %s took %.1f s\n", w, b - a }'; }
FAILED=()
run_part() { # run_part NAME command...: timed, in a subshell; a failure stops the step (or, with
  # STACK_DRILLS_KEEP_GOING=1, is noted and the next part runs; the step still exits 1)
  local name="$1" status=0; shift
  part "$name"
  ( "$@" ) || status=$?
  took "$name (exit $status)"
  if [ "$status" != 0 ]; then
    FAILED+=("$name")
    [ "${STACK_DRILLS_KEEP_GOING:-0}" = 1 ] || exit 1
  fi
}
finish() {
  local status=$?
  trap - EXIT
  part "scripts/stack down"
  scripts/stack down || status=1
  took "down"
  awk -v a="$STEP_STARTED" -v b="$EPOCHREALTIME" -v s="$status" \
    'BEGIN { printf "== stack drills: %s in %.1f s\n", (s == 0 ? "all passed" : "FAILED"), b - a }'
  exit "$status"
}

# A stack left in that directory by an interrupted run goes down first; then a fresh one.
[ ! -d "$STACK_DIR" ] || scripts/stack down >/dev/null 2>&1 || true
rm -rf "$STACK_DIR"
trap finish EXIT

part "scripts/stack up in $STACK_DIR (ports $BASE-$((BASE + 8)))"
scripts/stack up
scripts/stack status
took "up"
STACK_ENV="$(scripts/stack env)"
URL="$(sed -n 's/^export SWITCHYARD_URL=//p' <<<"$STACK_ENV")"
TOKEN="$(sed -n 's/^export SWITCHYARD_TOKEN=//p' <<<"$STACK_ENV")"
[ -n "$URL" ] && [ -n "$TOKEN" ] || { echo "scripts/stack env named no URL or token"; exit 1; }

contract() {
  # The seed data goes to the stack's databases: the service's own environment.
  eval "$STACK_ENV"
  CONTRACT_BASE_URL="$URL" CONTRACT_TOKEN="$TOKEN" CONTRACT_SERVER_LOG="$STACK_DIR/log/web.log" \
    CONTRACT_CONFIG="$ROOT/.ci/schemathesis-nginx.toml" .ci/contract.sh
}
cross_origin() {
  STACK_API_URL="$URL" STACK_API_TOKEN="$TOKEN" STACK_FRONTEND_PORT="$FRONTEND_PORT" \
    SWITCHYARD_EMBEDDED=1 SWITCHYARD_VAR_DIR="$ROOT/var/ci-stack-drills-test" \
    scripts/test tests/ops/test_stack_cross_origin.py -m stack -q
}

run_part "contract suite" contract
run_part "cross-origin frontend (page on 127.0.0.1:$FRONTEND_PORT)" cross_origin
run_part "slow clients (short form)" \
  python bench/slowclients.py --short --target-port "$BASE" --token "$TOKEN" --nginx-timeout 10
run_part "one instance killed (SIGKILL to web-1's gunicorn master)" \
  python bench/killone.py --url "$URL" --token "$TOKEN" --pidfile "$STACK_DIR/proxy/gunicorn-1.pid"
[ "${#FAILED[@]}" = 0 ] || { echo "== stack drills: failed: ${FAILED[*]}"; exit 1; }
