# Sourced (not run) by the scripts that need a real Milvus standalone 2.3.5: installs the
# `milvus==2.3.5` package (Milvus standalone with embedded etcd) into a venv of its own,
# MILVUS_VENV (default /tmp/milvus-venv), once, leaving the project's environment as it is.
# Afterwards "$MILVUS_VENV/bin/python" can start it (tests/standalone/milvus_standalone.py).
MILVUS_VENV="${MILVUS_VENV:-/tmp/milvus-venv}"

if ! "$MILVUS_VENV/bin/python" -c 'import milvus' 2>/dev/null; then
    python3 -m venv "$MILVUS_VENV"
    "$MILVUS_VENV/bin/pip" install --quiet 'milvus==2.3.5'
fi
