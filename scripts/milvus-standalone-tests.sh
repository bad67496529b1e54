#!/bin/sh
# Opt-in test tier: the vector-store contract against a real Milvus standalone (2.3.5).
#
# Installs `milvus==2.3.5` (Milvus standalone with embedded etcd) into a venv of its own,
# MILVUS_VENV (default /tmp/milvus-venv; scripts/milvus-venv.sh), leaving the project's
# environment as it is. Milvus
# binds 0.0.0.0, so the server and the tests run together in a network namespace that has
# nothing but loopback; they need no PostgreSQL or Redis. Extra arguments go to pytest.
#
#   scripts/milvus-standalone-tests.sh            # as root
#   scripts/milvus-standalone-tests.sh -k upsert
set -eu
cd "$(dirname "$0")/.."
. scripts/milvus-venv.sh

if [ "$(id -u)" -ne 0 ]; then
    echo "milvus-standalone-tests: run as root (unshare -n needs it)" >&2
    exit 2
fi

exec unshare -n sh -c 'ip link set lo up
    SOMA_TEST_MILVUS_STANDALONE=1 SOMA_TEST_MILVUS_PYTHON="$0/bin/python" \
        exec python3 -m pytest tests/standalone -q -p no:cacheprovider "$@"' "$MILVUS_VENV" "$@"
