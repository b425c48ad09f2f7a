#!/bin/sh
# Streaming replica: on first start, clone the primary with pg_basebackup -R (writes
# standby.signal and primary_conninfo), then run PostgreSQL as a hot standby.
set -eu
: "${PRIMARY_HOST:?}" "${PGPASSWORD:?REPLICATION_PASSWORD must be set}"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  until pg_isready -h "$PRIMARY_HOST" -p 5432 -U replicator -d postgres; do
    echo "waiting for the primary at $PRIMARY_HOST"; sleep 1
  done
  mkdir -p "$PGDATA"
  chown postgres:postgres "$PGDATA"
  chmod 700 "$PGDATA"
  gosu postgres pg_basebackup -h "$PRIMARY_HOST" -p 5432 -U replicator -D "$PGDATA" \
    -R -X stream -c fast --label=switchyard-replica
fi
exec gosu postgres postgres -c hot_standby=on -c hot_standby_feedback=on -c listen_addresses='*'
