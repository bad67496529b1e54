#!/bin/sh
# Search on a real Milvus standalone 2.3.5, in a loopback-only network namespace.
#
# By default: search right after writes on milvus-lite and on the server, one run
# (bench/search_server.py): searches/s, p50 and p99 per backend, and read-your-writes; both
# services use the embedded PostgreSQL.
# With --quality first: bench/search_quality.py with its vectors on the server (recall@10 and
# latency at 100k, quiet, under writes, right after a load); it reaches the machine's PostgreSQL
# through its Unix socket (SOMA_BENCH_PG_SOCKET, default /var/run/postgresql).
#
# Installs Milvus into a venv of its own (scripts/milvus-venv.sh). Milvus binds 0.0.0.0, hence
# the namespace that has nothing but loopback. Extra arguments go to the bench.
#
#   scripts/bench-search-server.sh                     # as root
#   scripts/bench-search-server.sh --seconds 10 --memories 2000
#   scripts/bench-search-server.sh --quality --sizes 100000 --queries 200 --under-writes 200
set -eu
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
    echo "bench-search-server: run as root (unshare -n needs it)" >&2
    exit 2
fi

. scripts/milvus-venv.sh

if [ "${1:-}" = "--quality" ]; then
    shift
    socket="${SOMA_BENCH_PG_SOCKET:-/var/run/postgresql}"
    set -- bench/search_quality.py --admin-url "postgresql://postgres@/test?host=$socket" "$@"
else
    set -- bench/search_server.py "$@"
fi

exec unshare -n sh -c 'ip link set lo up
    bench="$1"; shift
    PYTHONPATH=".${PYTHONPATH:+:$PYTHONPATH}" \
        exec python3 "$bench" --milvus-python "$0/bin/python" "$@"' "$MILVUS_VENV" "$@"
