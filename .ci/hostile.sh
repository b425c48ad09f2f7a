#!/usr/bin/env bash
# The hostile pass, through the deployed shape: nginx (scripts/proxy) on a port that is not 80, in
# front of two instances sharing Redis, on the real engines.
#   1. .ci/hostile.py: what a careless or hostile client sends (unknown fields, oversized and deeply
#      nested bodies, random keys, scope mix-ups, heavy searches, personal data, look-alike names,
#      non-ASCII digits, repeated parameters, rate-limit headers); each case names the answers it
#      accepts; any 5xx fails.
#   2. schemathesis in negative mode (invalid data only) on every operation of the committed
#      schema: not_a_server_error and negative_data_rejection.
# Standalone: assumes the venv is active and the *_DATABASE_URL of the real engines are exported
# (as .ci/run does). Knobs: HOSTILE_PORT (a free one from 18960), HOSTILE_REDIS_URL
# (redis://127.0.0.1:6379/9), HOSTILE_MAX_EXAMPLES (20), HOSTILE_REPORT (var/hostile/report.md).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
source scripts/lib.sh
log() { printf '==> hostile: %s\n' "$*" >&2; }
PORT="${HOSTILE_PORT:-$(python -c '
import socket
for port in range(18960, 18990):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
    except OSError:
        continue
    print(port)
    break
')}"
BASE="http://127.0.0.1:$PORT"
RUN="$ROOT/var/hostile"
rm -rf "$RUN"
mkdir -p "$RUN"
export SWITCHYARD_VAR_DIR="$RUN/var"
mkdir -p "$SWITCHYARD_VAR_DIR"
export SECRET_KEY="${SECRET_KEY:-$(python -c 'import secrets; print(secrets.token_urlsafe(50))')}"
export DJANGO_SETTINGS_MODULE=core.settings
export CACHE_URL="${HOSTILE_REDIS_URL:-redis://127.0.0.1:6379/9}"
export ALLOWED_HOSTS="127.0.0.1,localhost"
export CORS_ALLOWED_ORIGINS="${CORS_ALLOWED_ORIGINS:-http://localhost:5173}"
# schemathesis sends thousands of requests with one token: a budget it does not reach (the
# rate-limit headers are still written).
export API_THROTTLE_RATE="${HOSTILE_THROTTLE_RATE:-100000/minute}"
REPORT="${HOSTILE_REPORT:-$RUN/report.md}"
export HOSTILE_RANDOM_KEYS="${HOSTILE_RANDOM_KEYS:-1300}"
redis-cli -u "$CACHE_URL" flushdb >/dev/null

PROXY_PID=""
cleanup() {
  if [ -n "$PROXY_PID" ] && kill -0 "$PROXY_PID" 2>/dev/null; then
    kill -TERM "$PROXY_PID" 2>/dev/null || true
    wait "$PROXY_PID" 2>/dev/null || true
  fi
}
trap cleanup EXIT

started=$SECONDS
log "migrate, legacy table, seed, tokens"
python manage.py migrate_all >/dev/null
python manage.py ensure_legacy_table >/dev/null
python manage.py collectstatic --noinput --verbosity 0
AUTHOR_ID="$(LEGACY_ALLOW_WRITES=1 python manage.py shell -c '
from django.utils import timezone
from core.legacy.models import LegacyCustomer
from core.users.models import User
user = User.objects.filter(username="hostile-author").first() or User.objects.create(username="hostile-author", email="hostile-author@example.com")
for i in range(1, 4):
    LegacyCustomer.objects.get_or_create(customer_email=f"hostile{i}@example.com",
        defaults={"customer_name": f"Hostile Customer {i}", "created_date": timezone.now()})
print(user.pk)
' | tail -1)"
token() { python manage.py create_api_token "$@" 2>/dev/null | tail -1; }
export HOSTILE_BASE="$BASE" HOSTILE_AUTHOR_ID="$AUTHOR_ID" HOSTILE_REPORT="$REPORT"
HOSTILE_STAFF="$(token hostile-staff --staff)"
HOSTILE_READ="$(token hostile-reader --scopes read)"
HOSTILE_WRITER="$(token hostile-writer --scopes posts:write --user-id "$AUTHOR_ID")"
HOSTILE_PII="$(token hostile-pii --scopes read,pii:read)"
export HOSTILE_STAFF HOSTILE_READ HOSTILE_WRITER HOSTILE_PII

log "nginx on $BASE in front of two instances on $CACHE_URL"
BIND="127.0.0.1:$PORT" SERVE_INSTANCES=2 scripts/proxy "$RUN/proxy" >"$RUN/proxy.log" 2>&1 &
PROXY_PID=$!
wait_for "the proxy" curl -fsS "$BASE/health" || { tail -50 "$RUN/proxy.log" >&2; exit 1; }

status=0
log "1/2 the hostile cases"
python .ci/hostile.py || status=1

log "2/2 schemathesis, negative data only, every operation"
# schemathesis sends thousands of requests with the staff token: its own budget.
if ! (cd "$RUN" && st --config-file "$ROOT/.ci/schemathesis.toml" run "$ROOT/openapi/schema.yaml" --url "$BASE" \
    -H "Authorization: Token $HOSTILE_STAFF" --mode negative \
    --checks not_a_server_error,negative_data_rejection \
    --phases examples,coverage,fuzzing \
    --max-examples "${HOSTILE_MAX_EXAMPLES:-20}" --seed "${CONTRACT_SEED:-20261207}" --workers 1 --request-timeout 30 \
    --suppress-health-check all --warnings off | tee "$RUN/schemathesis.log" | tail -25); then
  log "schemathesis found problems"
  status=1
fi
# What the instances answered during the whole pass (gunicorn's JSON access lines).
log "answers by status through the pass:"
grep -ohE '"status": ?[1-5][0-9]{2}' "$RUN/proxy.log" | grep -oE '[1-5][0-9]{2}' | sort | uniq -c | tee -a "$REPORT" >&2 || true
if grep -qE '"status": ?5[0-9]{2}' "$RUN/proxy.log"; then
  log "a 5xx was answered:"
  grep -E '"status": ?5[0-9]{2}' "$RUN/proxy.log" | grep -oE '"msg":"[^"]*"' | sort | uniq -c | head -20 >&2
  status=1
fi
log "took $((SECONDS - started)) s; report in $REPORT"
exit "$status"
