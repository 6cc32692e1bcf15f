#!/usr/bin/env bash
# Set up the django-helpdesk peer of issue 8 §8 (idempotent):
#   eval $(bench/servers.sh start) && bench/peers/helpdesk/setup.sh [TICKETS]
# 1. a virtualenv bench/peers/helpdesk/.venv with the exact pins of requirements.txt;
# 2. database `helpdeskbench` on the benchmark PostgreSQL server (the same server as cxbench);
# 3. migrations, a staff superuser + DRF token + a queue (seed.py), then TICKETS tickets
#    (default 100000) with a few follow-ups each.
set -euo pipefail
cd "$(dirname "$0")"
PG_PORT=${BENCH_PG_PORT:-54339}
TICKETS=${1:-100000}
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
if [ ! -f .venv/.installed ] || [ requirements.txt -nt .venv/.installed ]; then
  .venv/bin/pip install -q -r requirements.txt
  touch .venv/.installed
fi
psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname='helpdeskbench'" | grep -q 1 \
  || psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -qc "CREATE DATABASE helpdeskbench"
export PEER_DATABASE_URL=${PEER_DATABASE_URL:-postgres://postgres@127.0.0.1:$PG_PORT/helpdeskbench}
.venv/bin/python site/manage.py migrate --noinput -v 0
.venv/bin/python seed.py --tickets "$TICKETS"
