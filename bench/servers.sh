#!/usr/bin/env bash
# Start or stop the PostgreSQL and Redis servers the benchmarks use, on loopback only.
#   bench/servers.sh start   → prints the DATABASE_URL / REDIS_URL to export
#   bench/servers.sh stop
#   bench/servers.sh reset   → empties the platform's database (cxbench; the peer's is kept):
#                              every benchmark writes into the dataset the reads then measure
# Data lives in var/bench/ (PostgreSQL with fsync off: a benchmark box, not a database).
# Needs Debian's postgresql and redis-server packages (`make bench` installs them with apt).
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=$(pwd)/var/bench
PG_PORT=${BENCH_PG_PORT:-54339}
REDIS_PORT=${BENCH_REDIS_PORT:-63809}
PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
as_postgres() { if [ "$(id -u)" = 0 ]; then su postgres -s /bin/sh -c "$*"; else sh -c "$*"; fi; }

case "${1:-}" in
start)
  mkdir -p "$DIR"
  chmod 755 "$DIR" "$(dirname "$DIR")"
  if [ ! -d "$DIR/pg" ]; then
    mkdir -p "$DIR/pg"
    [ "$(id -u)" = 0 ] && chown postgres "$DIR/pg"
    as_postgres "$PGBIN/initdb -D $DIR/pg -A trust -U postgres -E UTF8 >/dev/null"
  fi
  if ! as_postgres "$PGBIN/pg_ctl -D $DIR/pg status" >/dev/null 2>&1; then
    as_postgres "$PGBIN/pg_ctl -D $DIR/pg -l $DIR/pg/server.log -w -o \"-c listen_addresses=127.0.0.1 -p $PG_PORT -k $DIR/pg -c fsync=off -c synchronous_commit=off -c max_connections=300 -c shared_buffers=1GB -c work_mem=32MB -c random_page_cost=1.1 -c effective_cache_size=8GB\" start" >/dev/null
  fi
  psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname='cxbench'" | grep -q 1 \
    || psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -qc "CREATE DATABASE cxbench"
  if ! redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; then
    redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --daemonize yes --save '' --appendonly no --dir "$DIR" >/dev/null
    for _ in $(seq 50); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
  fi
  echo "export DATABASE_URL=postgres://postgres@127.0.0.1:$PG_PORT/cxbench"
  echo "export REDIS_URL=redis://127.0.0.1:$REDIS_PORT/0"
  ;;
reset)
  psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -qc "DROP DATABASE IF EXISTS cxbench WITH (FORCE)"
  psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -qc "CREATE DATABASE cxbench"
  redis-cli -p "$REDIS_PORT" flushall >/dev/null
  ;;
stop)
  redis-cli -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
  [ -d "$DIR/pg" ] && as_postgres "$PGBIN/pg_ctl -D $DIR/pg -m fast -w stop" >/dev/null 2>&1 || true
  ;;
*)
  echo "usage: $0 start|reset|stop" >&2; exit 2 ;;
esac
