#!/bin/sh
# Writes pgbouncer.ini and the auth file from the environment (nothing secret in the image), then
# runs PgBouncer in the foreground. Transaction pooling: see docs/operations.md ("PgBouncer").
#   DB_HOST, DB_PORT (5432), DB_USER, DB_PASSWORD, DEFAULT_POOL_SIZE (20), MAX_CLIENT_CONN (1000),
#   MAX_DB_CONNECTIONS (0: unlimited), RESERVE_POOL_SIZE (5)
set -eu
: "${DB_HOST:?}" "${DB_USER:?}" "${DB_PASSWORD:?}"
dir=/tmp/pgbouncer
mkdir -p "$dir"
umask 077
printf '"%s" "%s"\n' "$DB_USER" "$DB_PASSWORD" > "$dir/userlist.txt"
cat > "$dir/pgbouncer.ini" <<INI
[databases]
* = host=${DB_HOST} port=${DB_PORT:-5432}

[pgbouncer]
listen_addr = 0.0.0.0
listen_port = 6432
unix_socket_dir =
auth_type = scram-sha-256
auth_file = $dir/userlist.txt
pool_mode = transaction
max_client_conn = ${MAX_CLIENT_CONN:-1000}
default_pool_size = ${DEFAULT_POOL_SIZE:-20}
reserve_pool_size = ${RESERVE_POOL_SIZE:-5}
reserve_pool_timeout = 2
max_db_connections = ${MAX_DB_CONNECTIONS:-0}
server_reset_query =
server_idle_timeout = 30
server_lifetime = 600
ignore_startup_parameters = extra_float_digits,options
INI
exec pgbouncer "$dir/pgbouncer.ini"
