#!/usr/bin/env bash
# Start a throw-away PostgreSQL cluster on loopback for the test suite and print the URL the
# tests read (DUIJIE_TEST_POSTGRES_URL). Installs the Debian package when the server binaries
# are missing. Usage: eval "$(bash .ci/postgres.sh start)"; bash .ci/postgres.sh stop DIR
set -euo pipefail

action=${1:-start}
if [ "$action" = "stop" ]; then
  dir=${2:?cluster directory}
  bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
  runuser -u postgres -- "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
  rm -rf "$dir"
  exit 0
fi

if ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq postgresql >/dev/null
fi
bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
port=${DUIJIE_TEST_POSTGRES_PORT:-54329}
# Another cluster (a developer's, a second run) may hold the port: take the next free one.
while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do port=$((port + 1)); done
dir=$(mktemp -d /tmp/duijie-pg.XXXXXX)
chown postgres "$dir"
runuser -u postgres -- "$bin/initdb" -D "$dir/data" -A trust -U postgres -E UTF8 \
  --locale=C.UTF-8 >/dev/null
# Durability off: a test cluster, thrown away after the run. Autovacuum off: the tests drop
# their databases WITH (FORCE), which a non-superuser cannot do while an autovacuum worker is in
# the database ("must be a member of the role whose process is being terminated").
runuser -u postgres -- "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
  -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c autovacuum=off -c max_connections=200" \
  start >/dev/null || { echo "PostgreSQL did not start:" >&2; tail -5 "$dir/server.log" >&2; exit 1; }
psql -q -h 127.0.0.1 -p "$port" -U postgres -d postgres -v ON_ERROR_STOP=1 \
  -c "CREATE ROLE duijie LOGIN CREATEDB PASSWORD 'duijie'" \
  -c "GRANT pg_signal_backend TO duijie" \
  -c "CREATE DATABASE duijie_test OWNER duijie" >&2
echo "export DUIJIE_TEST_POSTGRES_URL=postgresql+psycopg://duijie:duijie@127.0.0.1:$port/duijie_test"
echo "export DUIJIE_TEST_POSTGRES_DIR=$dir"
