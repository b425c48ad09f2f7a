#!/usr/bin/env bash
# Contract checks of the committed OpenAPI schema against a live service (issue 3, items 9-10):
#   1. schemathesis over openapi/schema.yaml with a staff token: no 5xx, every response (status,
#      content type, headers, body) as documented, invalid input rejected, no access without the
#      token, and (stateful phase) created resources readable and deleted ones gone.
#      allow_header_conformance too: the schema documents the legacy write methods only when
#      LEGACY_ALLOW_WRITES is on (its default, off, is what the committed schema is generated with).
#   2. TypeScript types from the schema with openapi-typescript, `tsc --noEmit` of a small client
#      (clients/ts/), then its smoke script (clients/ts/src/smoke.ts) compiled and run against the
#      live service: list, create with Idempotency-Key (and the replay), a 400 read as Problem Details;
#   3. a Python client generated with openapi-python-client (requirements-dev.txt) and
#      clients/python/smoke.py run with it against the live service (the same checks);
#   4. /api/docs/ in headless Debian Chromium driven by Playwright: the operations render and no
#      request leaves localhost.
# Each step prints its duration.
# Standalone: assumes the venv is active and the *_DATABASE_URL of the real engines are exported
# (as .ci/run does); installs what it needs (npm packages from clients/ts/package-lock.json,
# Debian chromium). Knobs: CONTRACT_PORT (a free one), CONTRACT_MAX_EXAMPLES (25), CONTRACT_SEED.
# Against a running service instead (.ci/stack-drills.sh: the stack, through nginx):
# CONTRACT_BASE_URL and CONTRACT_TOKEN (a staff token), with that service's databases in the
# environment for the seed data (eval "$(scripts/stack env)"); no migration, no server of its own.
# CONTRACT_SERVER_LOG names the log its gunicorn instances write access lines to: what they append
# during the run is tallied as the standalone server's log is (without it there is no tally; the
# not_a_server_error check still fails on any 5xx). CONTRACT_CONFIG: schemathesis' configuration
# file (.ci/schemathesis.toml; through nginx, .ci/schemathesis-nginx.toml).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
# A free loopback port unless one is given (never a port another service already answers on).
if [ -n "${CONTRACT_BASE_URL:-}" ]; then
  BASE="${CONTRACT_BASE_URL%/}"
  [ -n "${CONTRACT_TOKEN:-}" ] || { echo "==> contract: CONTRACT_BASE_URL needs CONTRACT_TOKEN" >&2; exit 2; }
else
  PORT="${CONTRACT_PORT:-$(python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}"
  BASE="http://127.0.0.1:$PORT"
fi
MAX_EXAMPLES="${CONTRACT_MAX_EXAMPLES:-25}"
WORK="$(mktemp -d)"
log() { printf '==> contract: %s\n' "$*" >&2; }
STEP_START=$SECONDS
step() { STEP_START=$SECONDS; log "$*"; }
took() { log "  ($1 took $((SECONDS - STEP_START)) s)"; }

# Debian packages this script needs (installed only when their command is missing).
apt_install() {
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  log "installing Debian packages: $*"
  $sudo apt-get update -qq && $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}
command -v curl >/dev/null 2>&1 || apt_install curl
command -v npm >/dev/null 2>&1 || apt_install nodejs npm
[ -x /usr/bin/chromium ] || apt_install chromium

SERVER_PID=""
cleanup() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

export SECRET_KEY="${SECRET_KEY:-$(python -c 'import secrets; print(secrets.token_urlsafe(50))')}"
export SWITCHYARD_VAR_DIR="${SWITCHYARD_VAR_DIR:-$ROOT/var/contract}"
mkdir -p "$SWITCHYARD_VAR_DIR"
# The property-based run sends thousands of requests with one token: lift the per-token budget.
export API_THROTTLE_RATE="1000000/minute"
export DJANGO_SETTINGS_MODULE=core.settings

if [ -z "${CONTRACT_BASE_URL:-}" ]; then
  log "migrate, legacy table, seed data, token"
  python manage.py migrate_all >/dev/null
  python manage.py ensure_legacy_table >/dev/null
else
  log "seed data for the service on $BASE"
fi
LEGACY_ALLOW_WRITES=1 python manage.py shell -c '
# Idempotent: a previous run (or schemathesis itself) may have renamed or deleted seed rows.
from django.db.models import Q
from django.utils import timezone
from core.analytics.models import AnalyticsEvent
from core.blog.models import Post
from core.legacy.models import LegacyCustomer
from core.users.models import User
for i in range(1, 6):
    name, email = f"contract{i}", f"contract{i}@example.com"
    if not User.objects.filter(Q(username=name) | Q(email__iexact=email)).exists():
        User.objects.create(username=name, email=email)
for user in User.objects.order_by("id")[:5]:
    if not Post.objects.filter(author_id=user.pk).exists():
        Post.objects.create(author_id=user.pk, title=f"Post by {user.username}", content="seed")
    AnalyticsEvent.objects.create(event_type="page_view", user_id=user.pk, data={"seed": True})
for i in range(1, 6):
    LegacyCustomer.objects.get_or_create(customer_email=f"contract{i}@example.com",
        defaults={"customer_name": f"Contract Customer {i} \U0001F680", "created_date": timezone.now()})
print("seeded")
'
SERVER_LOG_FROM=0
if [ -n "${CONTRACT_BASE_URL:-}" ]; then
  TOKEN="$CONTRACT_TOKEN"
  curl -fsS "$BASE/health" >/dev/null || { log "nothing answers GET $BASE/health"; exit 1; }
  if [ -n "${CONTRACT_SERVER_LOG:-}" ]; then SERVER_LOG_FROM="$(($(stat -c %s "$CONTRACT_SERVER_LOG") + 1))"; fi
  log "against the running service on $BASE"
else
  TOKEN="$(python manage.py create_api_token contract-bot --staff 2>/dev/null | tail -1)"
  [ -n "$TOKEN" ] || { log "no token"; exit 1; }

  if curl -s -o /dev/null "$BASE/health"; then log "something already answers on $BASE"; exit 1; fi
  log "starting the service on $BASE"
  # gunicorn as in production (static assets of the docs served by WhiteNoise); access log for the tally.
  gunicorn core.wsgi:application --bind "127.0.0.1:$PORT" --worker-class gthread --workers 2 --threads 4 \
    --timeout 60 --access-logfile - >"$WORK/server.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 60); do
    curl -fsS "$BASE/health" >/dev/null 2>&1 && break
    sleep 0.5
  done
  curl -fsS "$BASE/health" >/dev/null || { log "service did not start"; cat "$WORK/server.log" >&2; exit 1; }
fi
# The service's access lines written since the start (the running service's log, from its offset).
server_log() {
  if [ -n "${CONTRACT_BASE_URL:-}" ] && [ -n "${CONTRACT_SERVER_LOG:-}" ]; then
    tail -c "+$SERVER_LOG_FROM" "$CONTRACT_SERVER_LOG" > "$WORK/server.log"
  fi
}

status=0

step "1/4 schemathesis (max $MAX_EXAMPLES examples per operation)"
# Run from the scratch directory so that schemathesis' cache (.schemathesis/) does not land in the tree.
# One worker: with two, one scenario's DELETE of a user (which deletes their posts) can race another
# scenario's check that the post it just created is readable.
if ! (cd "$WORK" && st --config-file "${CONTRACT_CONFIG:-$ROOT/.ci/schemathesis.toml}" run "$ROOT/openapi/schema.yaml" --url "$BASE" \
    -H "Authorization: Token $TOKEN" \
    --checks not_a_server_error,allow_header_conformance,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance,ignored_auth,unsupported_method,negative_data_rejection,missing_required_header,use_after_free,ensure_resource_availability \
    --phases examples,coverage,fuzzing,stateful \
    --max-examples "$MAX_EXAMPLES" --seed "${CONTRACT_SEED:-20261125}" --workers 1 --request-timeout 30 \
    --suppress-health-check all --warnings off); then
  log "schemathesis found problems"
  server_log
  grep -E "Traceback|Error" "$WORK/server.log" | tail -20 >&2 || true
  status=1
fi

# What the service answered during the run (gunicorn's access log): a 5xx here fails the run too.
# gunicorn reads ./gunicorn.conf.py, so access lines are JSON ("status": 200); the plain format
# (" 200 ") is matched too. An empty tally means the log format changed: that fails the run.
server_log
if [ -n "${CONTRACT_BASE_URL:-}" ] && [ -z "${CONTRACT_SERVER_LOG:-}" ]; then
  log "no CONTRACT_SERVER_LOG: no tally of the service's answers (schemathesis' not_a_server_error still checks)"
else
  log "responses by status during the run:"
  STATUS_RE='"status": ?[1-5][0-9]{2}[,}]|" [1-5][0-9]{2} '
  grep -oE "$STATUS_RE" "$WORK/server.log" | grep -oE '[1-5][0-9]{2}' | sort | uniq -c | sort -rn >&2 || true
  if ! grep -qE "$STATUS_RE" "$WORK/server.log"; then
    log "no access log lines found: cannot tell whether the service answered 5xx"; status=1
  fi
  if grep -qE '"status": ?5[0-9]{2}[,}]|" 5[0-9]{2} ' "$WORK/server.log"; then
    log "the service answered 5xx:"; grep -E '"status": ?5[0-9]{2}[,}]|" 5[0-9]{2} |Traceback' "$WORK/server.log" | head -20 >&2
    status=1
  fi
fi
took schemathesis

step "2/4 TypeScript client: openapi-typescript, tsc --noEmit, smoke script against the service"
(
  cd clients/ts
  npm ci --no-audit --no-fund --loglevel=error
  npm run --silent generate
  npx --no-install tsc --noEmit -p .
  # The same sources compiled to CommonJS for Node (the checked build emits nothing).
  npx --no-install tsc -p . --noEmit false --outDir "$WORK/ts" --module commonjs --moduleResolution node10
  node "$WORK/ts/smoke.js" "$BASE" "$TOKEN"
) || { log "TypeScript client failed"; status=1; }
took "TypeScript client"

step "3/4 Python client: openapi-python-client, clients/python/smoke.py against the service"
(
  openapi-python-client generate --path openapi/schema.yaml --meta none \
    --output-path "$WORK/py/switchyard_client" >"$WORK/py-generate.log" 2>&1 \
    || { cat "$WORK/py-generate.log" >&2; exit 1; }
  PYTHONPATH="$WORK/py" python clients/python/smoke.py "$BASE" "$TOKEN"
) || { log "Python client failed"; status=1; }
took "Python client"

step "4/4 /api/docs/ in headless Chromium"
CONTRACT_BASE="$BASE" python - <<'PY' || { log "docs page check failed"; status=1; }
import os
import sys
from urllib.parse import urlsplit

import yaml
from playwright.sync_api import sync_playwright

base = os.environ["CONTRACT_BASE"]
with open("openapi/schema.yaml", encoding="utf-8") as fh:
    schema = yaml.safe_load(fh)
methods = {"get", "post", "put", "patch", "delete"}
expected = sum(1 for ops in schema["paths"].values() for m in ops if m in methods)

requests: list[str] = []
blocked: list[str] = []  # refused by the page's Content-Security-Policy before leaving the browser
with sync_playwright() as p:
    browser = p.chromium.launch(
        executable_path="/usr/bin/chromium",
        headless=True,
        args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
    )
    page = browser.new_page()
    page.on("request", lambda request: requests.append(request.url))
    page.on(
        "requestfailed",
        lambda request: blocked.append(request.url) if "csp" in (request.failure or "").lower() else None,
    )
    for path in ("/api/docs/", "/api/redoc/"):
        page.goto(base + path, wait_until="networkidle")
        if path == "/api/docs/":
            page.wait_for_selector(".opblock", timeout=30_000)
            rendered = page.locator(".opblock").count()
            print(f"swagger-ui rendered {rendered} operations; the schema has {expected}")
            if rendered != expected:
                sys.exit(f"expected {expected} operations, saw {rendered}")
        else:
            page.wait_for_selector("[data-section-id^='tag/'], [data-section-id^='operation/']", timeout=30_000)
    browser.close()

outside = sorted(
    {
        u
        for u in requests
        if urlsplit(u).hostname not in ("127.0.0.1", "localhost")
        and not u.startswith(("data:", "blob:"))
        and u not in blocked
    }
)
print(f"{len(requests)} requests, {len(outside)} sent outside localhost, {len(set(blocked))} blocked by CSP")
if outside:
    sys.exit("requests left localhost: " + ", ".join(outside[:10]))
PY
took "docs page"

if [ "$status" = 0 ]; then log "all contract checks passed"; else log "contract checks FAILED"; fi
exit "$status"
