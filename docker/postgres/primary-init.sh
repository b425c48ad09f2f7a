#!/bin/sh
# First start of the primary (run once by the postgres image from /docker-entrypoint-initdb.d):
# the other Switchyard databases and a replication role for the streaming replica.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  -v replication_password="$REPLICATION_PASSWORD" <<'SQL'
CREATE ROLE replicator WITH REPLICATION LOGIN PASSWORD :'replication_password';
CREATE DATABASE switchyard_users;
CREATE DATABASE switchyard_analytics;
SQL
# pg_hba "all" does not cover replication connections: allow the replicator from the compose network.
echo "host replication replicator all scram-sha-256" >> "$PGDATA/pg_hba.conf"
