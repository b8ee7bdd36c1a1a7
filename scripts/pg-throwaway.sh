# Sourced by scripts/test and scripts/bench: starts a throwaway PostgreSQL cluster on loopback
# in a temporary folder, exports CASHIER_TEST_POSTGRES_URL, and removes it all on exit.
# Needs the PostgreSQL server binaries (Debian: apt-get install postgresql).

pg_bindir=""
if command -v pg_config >/dev/null 2>&1 && [ -x "$(pg_config --bindir)/initdb" ]; then
  pg_bindir=$(pg_config --bindir)
fi
if [ -z "$pg_bindir" ]; then
  pg_bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
fi
if [ -z "$pg_bindir" ] || [ ! -x "$pg_bindir/initdb" ]; then
  echo "PostgreSQL server binaries not found: install them (Debian: apt-get install postgresql)," >&2
  echo "or set CASHIER_TEST_POSTGRES_URL to a server where this user may CREATE DATABASE." >&2
  exit 1
fi

pg_dir=$(mktemp -d /tmp/cashier-pg.XXXXXX)
pg_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# PostgreSQL refuses to run as root; run it as the postgres user then.
pg_run() { "$@"; }
if [ "$(id -u)" = 0 ]; then
  chown postgres "$pg_dir"
  pg_run() { runuser -u postgres -- "$@"; }
fi
pg_run "$pg_bindir/initdb" -D "$pg_dir/data" -U cashier --auth=trust -E UTF8 >"$pg_dir/initdb.log" 2>&1 \
  || { cat "$pg_dir/initdb.log" >&2; exit 1; }
pg_run "$pg_bindir/pg_ctl" -D "$pg_dir/data" -l "$pg_dir/server.log" -w \
  -o "-p $pg_port -k $pg_dir -c listen_addresses=127.0.0.1 -c max_connections=500" start >/dev/null \
  || { cat "$pg_dir/server.log" >&2; exit 1; }
pg_stop() {
  # A server that crashed or ran out of disk during the run says so in its log, which is
  # removed next: show those lines, since the tests only see "in recovery mode".
  if grep -qE 'PANIC|terminated by signal|No space left' "$pg_dir/server.log" 2>/dev/null; then
    echo "the throwaway PostgreSQL failed during the run; its log says:" >&2
    grep -E 'PANIC|terminated by signal|No space left|was terminated' "$pg_dir/server.log" | head -20 >&2
    df -h "$pg_dir" >&2 || true
  fi
  pg_run "$pg_bindir/pg_ctl" -D "$pg_dir/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$pg_dir"
}
trap pg_stop EXIT
export CASHIER_TEST_POSTGRES_URL="postgres://cashier@127.0.0.1:$pg_port/postgres"
echo "throwaway PostgreSQL on 127.0.0.1:$pg_port" >&2
