# Shared shell helpers for scripts/serve, scripts/test and .ci/run. Source it; do not run it.
# shellcheck shell=bash

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${SWITCHYARD_VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3

log() { printf '==> %s\n' "$*" >&2; }

# Create the virtualenv and install the pinned requirements (quietly; again only when they change).
bootstrap_venv() {
  local reqs="${1:-requirements-dev.txt}"
  if [ ! -x "$VENV/bin/python" ]; then
    log "creating virtualenv in $VENV"
    "$PYTHON" -m venv "$VENV"
  fi
  local stamp="$VENV/.installed-$(cat "$ROOT/requirements.txt" "$ROOT/$reqs" "$ROOT/constraints.txt" 2>/dev/null | sha256sum | cut -c1-16)"
  if [ ! -f "$stamp" ]; then
    if ! "$VENV/bin/python" -c 'import MySQLdb' >/dev/null 2>&1 && ! pkg-config --exists mariadb mysqlclient 2>/dev/null; then
      ensure_apt_packages libmariadb-dev pkg-config
    fi
    log "installing $reqs"
    # (this machine's pip config names local indexes that may be absent: drop those warnings)
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip \
      2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$ROOT/$reqs" -c "$ROOT/constraints.txt" \
      2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
    touch "$stamp"
  fi
  # shellcheck disable=SC1091
  source "$VENV/bin/activate"
}

ensure_apt_packages() {
  local missing=()
  for pkg in "$@"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    log "installing Debian packages: ${missing[*]}"
    if [ "$(id -u)" = 0 ]; then
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    else
      sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
  fi
}

wait_for() { # wait_for "description" command...
  local what="$1"; shift
  for _ in $(seq 1 60); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.5
  done
  log "$what did not come up"; return 1
}

# Make sure PostgreSQL, MariaDB and Redis on this machine are running; start them when they are not.
# A server that is not installed (or does not come up) stops the script at once with what to do.
no_server() { # no_server <what> <how to install>
  log "$1 is not running on 127.0.0.1 and could not be started here."
  log "  Install it ($2) or point the *_DATABASE_URL variables at running servers,"
  log "  or run everything on the embedded SQLite databases instead: SWITCHYARD_EMBEDDED=1 scripts/test"
  return 1
}

ensure_services() {
  if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
    if ! command -v pg_ctlcluster >/dev/null 2>&1 || [ -z "$(ls /etc/postgresql 2>/dev/null)" ]; then
      no_server PostgreSQL "apt-get install postgresql postgresql-client"; return 1
    fi
    log "starting PostgreSQL"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
    wait_for PostgreSQL pg_isready -h 127.0.0.1 -p 5432 -q || { no_server PostgreSQL "apt-get install postgresql"; return 1; }
  fi
  if ! mysqladmin -h 127.0.0.1 -P 3306 -u root ping >/dev/null 2>&1; then
    if [ ! -x /usr/sbin/mariadbd ]; then
      no_server MariaDB "apt-get install mariadb-server mariadb-client"; return 1
    fi
    log "starting MariaDB"
    start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd || true
    wait_for MariaDB mysqladmin -h 127.0.0.1 -P 3306 -u root ping || { no_server MariaDB "apt-get install mariadb-server"; return 1; }
  fi
  if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
    if ! command -v redis-server >/dev/null 2>&1; then
      no_server Redis "apt-get install redis-server redis-tools"; return 1
    fi
    log "starting Redis"
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no || true
    wait_for Redis redis-cli -h 127.0.0.1 -p 6379 ping || { no_server Redis "apt-get install redis-server"; return 1; }
  fi
}

# Point every alias at the real engines on this machine (unless a URL is already set).
# SWITCHYARD_DB_PREFIX names the databases, so that several checkouts can share the servers.
export_real_urls() {
  local p="${SWITCHYARD_DB_PREFIX:-switchyard}"
  local pg="postgres://postgres@127.0.0.1:5432"
  export DATABASE_URL="${DATABASE_URL:-$pg/${p}}"
  export USERS_DATABASE_URL="${USERS_DATABASE_URL:-$pg/${p}_users}"
  export ANALYTICS_DATABASE_URL="${ANALYTICS_DATABASE_URL:-$pg/${p}_analytics}"
  export LEGACY_DATABASE_URL="${LEGACY_DATABASE_URL:-mysql://root@127.0.0.1:3306/${p}_legacy}"
  # cache_db stays SQLite (WAL) by design: a file under var/.
  for db in "${p}" "${p}_users" "${p}_analytics"; do
    psql -h 127.0.0.1 -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname='$db'" | grep -q 1 \
      || createdb -h 127.0.0.1 -U postgres "$db"
  done
  mysql -h 127.0.0.1 -u root -e "CREATE DATABASE IF NOT EXISTS \`${p}_legacy\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
}

ensure_secret_key() {
  if [ -z "${SECRET_KEY:-}" ]; then
    local var="${SWITCHYARD_VAR_DIR:-$ROOT/var}"
    mkdir -p "$var"
    if [ ! -s "$var/secret_key" ]; then
      (umask 077; python -c 'import secrets; print(secrets.token_urlsafe(50))' > "$var/secret_key")
    fi
    SECRET_KEY="$(cat "$var/secret_key")"
    export SECRET_KEY
  fi
}
