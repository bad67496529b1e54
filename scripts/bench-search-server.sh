#!/bin/sh
# Search right after writes on milvus-lite and on a real Milvus standalone 2.3.5, one run
# (bench/search_server.py): searches/s, p50 and p99 per backend, and read-your-writes.
#
# Installs Milvus into a venv of its own (scripts/milvus-venv.sh). Milvus binds 0.0.0.0, so the
# bench runs in a network namespace that has nothing but loopback; both services use the
# embedded PostgreSQL there. Extra arguments go to the bench.
#
#   scripts/bench-search-server.sh                     # as root
#   scripts/bench-search-server.sh --seconds 10 --memories 2000
set -eu
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
    echo "bench-search-server: run as root (unshare -n needs it)" >&2
    exit 2
fi

. scripts/milvus-venv.sh

exec unshare -n sh -c 'ip link set lo up
    PYTHONPATH=".${PYTHONPATH:+:$PYTHONPATH}" \
        exec python3 bench/search_server.py --milvus-python "$0/bin/python" "$@"' "$MILVUS_VENV" "$@"
