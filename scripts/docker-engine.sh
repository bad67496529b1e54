#!/usr/bin/env bash
# Make a Docker engine answer on this machine, for the image and compose tests (idempotent).
#
# If `docker info` works and the tools are there, nothing happens. Otherwise (as root) it
# installs Debian's docker.io, debootstrap and docker-compose when they are missing, and starts
# dockerd with no bridge network and no iptables rules: containers then run with
# `--network host` only, and no container ever gets an address of its own. It waits until
# `docker info` answers.
#
#   scripts/docker-engine.sh
#   DOCKER_DATA_ROOT=/srv/docker scripts/docker-engine.sh   # where images and layers live
set -euo pipefail

DATA_ROOT="${DOCKER_DATA_ROOT:-/var/lib/docker}"
LOG_FILE="${DOCKERD_LOG:-/var/log/dockerd-somamemory.log}"
WAIT_SECONDS="${DOCKERD_WAIT_SECONDS:-60}"

tools_present() {
    command -v docker >/dev/null && command -v dockerd >/dev/null \
        && command -v debootstrap >/dev/null && command -v docker-compose >/dev/null
}

if tools_present && docker info >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "docker-engine: no Docker engine (or docker-compose) here, and installing one needs root" >&2
    exit 2
fi
if ! tools_present; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io debootstrap docker-compose
fi
if docker info >/dev/null 2>&1; then
    exit 0
fi

# A dockerd that is starting already (its pid file names a live dockerd): wait for it instead.
pid_file=/var/run/docker.pid
running_pid="$(cat "$pid_file" 2>/dev/null || true)"
if [ "$(cat "/proc/${running_pid:-0}/comm" 2>/dev/null)" != "dockerd" ]; then
    mkdir -p "$DATA_ROOT" "$(dirname "$LOG_FILE")"
    nohup dockerd --bridge=none --iptables=false --ip6tables=false --ip-masq=false \
        --data-root "$DATA_ROOT" --pidfile "$pid_file" >>"$LOG_FILE" 2>&1 </dev/null &
fi

for _ in $(seq 1 "$WAIT_SECONDS"); do
    if docker info >/dev/null 2>&1; then
        exit 0
    fi
    sleep 1
done
echo "docker-engine: dockerd did not answer within ${WAIT_SECONDS}s; see $LOG_FILE" >&2
tail -n 20 "$LOG_FILE" >&2 || true
exit 1
