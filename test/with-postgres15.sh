#!/usr/bin/env bash
# Runs a command with TEST_DATABASE_URL pointing at a throwaway Debian
# PostgreSQL 15 server (trust auth on 127.0.0.1), then stops and removes it.
# Usage: bash test/with-postgres15.sh npm test -- test/sql/*.test.ts
set -euo pipefail
bin=/usr/lib/postgresql/15/bin
port=${PG15_PORT:-5415}
dir=$(mktemp -d /tmp/steadytext-pg15-XXXXXX)
chmod 755 "$dir"
as_pg=()
if [ "$(id -u)" = 0 ]; then
  id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
  chown postgres "$dir"
  as_pg=(runuser -u postgres --)
fi
cleanup() {
  "${as_pg[@]}" "$bin/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap cleanup EXIT
"${as_pg[@]}" "$bin/initdb" -D "$dir/data" -A trust -U postgres >/dev/null
"${as_pg[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w \
  -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=off" start >/dev/null
echo "PostgreSQL 15 on port $port"
TEST_DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres" "$@"
