#!/usr/bin/env bash
# A throwaway PostgreSQL server for the test suite and the benchmarks; prints its URL.
#
#   scripts/start-postgres.sh [DATA_DIR [PORT]]    # start (or reuse) a cluster, print its URL
#   scripts/start-postgres.sh --stop DATA_DIR      # stop it
#
# If OFFLOAD_TEST_POSTGRES_URL is set and reachable it is printed and nothing is started.
# Otherwise a cluster is initialised in DATA_DIR (default: a per-user directory under /tmp) with
# trust authentication on 127.0.0.1, plus password (scram) authentication for the role
# `offload_secret` that tests use to prove passwords never leak, and started on PORT (default: a
# free port). PostgreSQL refuses to run as root: as root the cluster belongs to the `postgres`
# user. The URL is also written to DATA_DIR/url.
set -euo pipefail

if [ "${1:-}" = "--stop" ]; then
  dir="$2"
  [ -f "$dir/PG_VERSION" ] || exit 0
  runas=()
  [ "$(id -u)" -eq 0 ] && runas=(runuser -u postgres --)
  bin="$(dirname "$(cat "$dir/bindir")")"
  "${runas[@]}" "$bin/pg_ctl" -D "$dir" -m immediate -w stop >/dev/null 2>&1 || true
  exit 0
fi

if [ -n "${OFFLOAD_TEST_POSTGRES_URL:-}" ] && pg_isready -q -d "$OFFLOAD_TEST_POSTGRES_URL" 2>/dev/null; then
  echo "$OFFLOAD_TEST_POSTGRES_URL"
  exit 0
fi

dir="${1:-/tmp/offload-test-postgres-$(id -u)}"
port="${2:-}"

find_bin() {
  local candidate
  for candidate in "$(command -v initdb 2>/dev/null || true)" /usr/lib/postgresql/*/bin/initdb; do
    if [ -n "$candidate" ] && [ -x "$candidate" ]; then
      readlink -f "$candidate"
      return 0
    fi
  done
  return 1
}

initdb_bin="$(find_bin)" || {
  echo "PostgreSQL server binaries not found (Debian: apt-get install postgresql)" >&2
  exit 1
}
bin="$(dirname "$initdb_bin")"

runas=()
owner="$(id -un)"
if [ "$(id -u)" -eq 0 ]; then
  runas=(runuser -u postgres --)
  owner=postgres
fi

# a running cluster of an earlier call is reused
if [ -f "$dir/url" ] && [ -f "$dir/postmaster.pid" ] \
  && "$bin/pg_isready" -q -d "$(cat "$dir/url")" 2>/dev/null; then
  cat "$dir/url"
  exit 0
fi

if [ ! -f "$dir/PG_VERSION" ]; then
  rm -rf "$dir"
  mkdir -p "$dir"
  chown "$owner" "$dir"
  chmod 700 "$dir"
  "${runas[@]}" "$bin/initdb" -D "$dir" -U postgres --auth=trust --encoding=UTF8 \
    --locale=C >"$dir.initdb.log" 2>&1 || {
    cat "$dir.initdb.log" >&2
    exit 1
  }
  # password authentication for one role, trust for everything else on loopback
  {
    echo "host all offload_secret 127.0.0.1/32 scram-sha-256"
    echo "host all all 127.0.0.1/32 trust"
    echo "local all all trust"
  } >"$dir/pg_hba.conf"
  echo "$initdb_bin" >"$dir/bindir"
  chown "$owner" "$dir/pg_hba.conf" "$dir/bindir"
fi

if [ -z "$port" ]; then
  port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
fi

"${runas[@]}" "$bin/pg_ctl" -D "$dir" -l "$dir/server.log" -w -t 60 \
  -o "-p $port -c listen_addresses=127.0.0.1 -k $dir -c max_connections=200 -c fsync=off" \
  start >/dev/null || {
  tail -20 "$dir/server.log" >&2
  exit 1
}
url="postgresql://postgres@127.0.0.1:$port/postgres"
echo "$url" >"$dir/url"
echo "$url"
