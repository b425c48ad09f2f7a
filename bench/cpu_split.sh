#!/usr/bin/env bash
# Where the machine's CPU goes while one endpoint is under load (issue 12): the service as shipped
# (gunicorn -c gunicorn.conf.py) on port 18701, wrk -t2 -c8 for SECONDS on PATH; the share of all
# CPU time (/proc/stat) spent by the gunicorn workers, PostgreSQL, MariaDB, Redis, wrk, the rest,
# and idle. Needs the bench data (bench/seed.sh --posts 100000).
#   bench/cpu_split.sh '/api/v1/users/{id}/' [SECONDS]
source "$(dirname "$0")/common.sh"
command -v wrk >/dev/null || ensure_apt_packages wrk
P="$1"; S="${2:-6}"; PORT="${BENCH_PORT:-18701}"
export BENCH_TOKEN="$(cat "$SWITCHYARD_VAR_DIR/token")"
env DJANGO_SETTINGS_MODULE=core.settings BIND="127.0.0.1:$PORT" gunicorn -c gunicorn.conf.py 2>"$SWITCHYARD_VAR_DIR/cpu_split.log" &
G=$!
trap 'kill $G 2>/dev/null; wait $G 2>/dev/null' EXIT
for _ in $(seq 50); do curl -fs "http://127.0.0.1:$PORT/health" >/dev/null && break; sleep 0.2; done
load() { BENCH_PATH="$P" BENCH_METHOD=GET BENCH_MAX_ID=10000 wrk -t2 -c8 -d"$1" -s bench/random_path.lua "http://127.0.0.1:$PORT"; }
load 2s >/dev/null
snap() {
  python - "$G" <<'PY'
import os, sys
master = sys.argv[1]
groups = {}
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        stat = open(f"/proc/{pid}/stat").read()
    except OSError:
        continue
    name = stat[stat.index("(") + 1 : stat.rindex(")")]
    fields = stat[stat.rindex(")") + 2 :].split()
    ticks = int(fields[11]) + int(fields[12])
    group = ("workers" if fields[1] == master else "postgres" if name.startswith("postgres")
             else "wrk" if name == "wrk" else "mariadb" if "mariadb" in name else "redis" if "redis" in name else "other")
    groups[group] = groups.get(group, 0) + ticks
cpu = list(map(int, open("/proc/stat").readline().split()[1:9]))
groups["idle"] = cpu[3] + cpu[4]
groups["total"] = sum(cpu)
print(" ".join(f"{k}={v}" for k, v in groups.items()))
PY
}
load "${S}s" >"$SWITCHYARD_VAR_DIR/cpu_split.wrk" &
W=$!
sleep 0.5; A="$(snap)"; sleep "$((S - 1))"; B="$(snap)"
wait "$W"
grep -E "Requests/sec|Non-2xx" "$SWITCHYARD_VAR_DIR/cpu_split.wrk"
python - "$A" "$B" <<'PY'
import sys
a, b = (dict(x.split("=") for x in arg.split()) for arg in sys.argv[1:])
total = int(b["total"]) - int(a["total"])
for key in sorted(k for k in b if k != "total"):
    print(f"{key:9s} {100 * (int(b[key]) - int(a.get(key, 0))) / total:5.1f} % of the machine")
PY
