#!/usr/bin/env bash
# A local stand-in for the Dockerfile's base image, for machines that reach no registry (idempotent).
#
# If the image (default python:3.11-slim-bookworm) is present, nothing happens. Otherwise (as
# root, with a running engine: scripts/docker-engine.sh) it builds a Debian bookworm root
# filesystem with debootstrap (python3, venv, pip, CA certificates), gives it this machine's pip
# settings so that `pip install` inside a build reaches the same package index, and imports it
# under the base image's name.
#
#   scripts/docker-base-image.sh
#   DEBIAN_MIRROR=http://deb.debian.org/debian scripts/docker-base-image.sh
set -euo pipefail

IMAGE="${PYTHON_IMAGE:-python:3.11-slim-bookworm}"

if docker image inspect "$IMAGE" >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "docker-base-image: $IMAGE is missing and building it needs root" >&2
    exit 2
fi
command -v debootstrap >/dev/null || {
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap
}

# The Debian mirror apt already uses here (uncommented lines only), else the public one.
default_mirror() {
    cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources \
        2>/dev/null | grep -v '^[[:space:]]*#' | grep -oE 'https?://[^ ]+/debian/?( |$)' \
        | head -n 1 | tr -d ' ' || true
}
MIRROR="${DEBIAN_MIRROR:-$(default_mirror)}"
MIRROR="${MIRROR:-http://deb.debian.org/debian}"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
rootfs="$work/rootfs"

debootstrap --variant=minbase --include=python3,python3-venv,python3-pip,ca-certificates \
    bookworm "$rootfs" "$MIRROR" >"$work/debootstrap.log" 2>&1 || {
    tail -n 30 "$work/debootstrap.log" >&2
    exit 1
}
ln -sf python3 "$rootfs/usr/bin/python"

# pip's effective settings here (files and PIP_* variables) become the image's /etc/pip.conf.
# Files they name (a CA bundle, a constraints file) are copied along; local wheel directories
# and file:// indexes would not exist inside the image, so they are left out.
python3 -m pip config list 2>/dev/null | python3 -c '
import configparser, os, re, shutil, sys

rootfs = sys.argv[1]
settings = {}
for line in sys.stdin:
    match = re.match(r"^(?:global|install|download|:env:)\.([\w-]+)=(.*)$", line.strip())
    if match:
        settings[match.group(1)] = match.group(2).strip("\x27\"")

kept = {}
for key, value in settings.items():
    words = []
    for word in value.split():
        local = word[len("file://"):] if word.startswith("file://") else word
        if os.path.isfile(local):
            target = os.path.join(rootfs, local.lstrip("/"))
            os.makedirs(os.path.dirname(target), exist_ok=True)
            shutil.copyfile(local, target)
            words.append(word)
        elif not (word.startswith("file://") or os.path.isdir(local)):
            words.append(word)
    if words:
        kept[key] = " ".join(words)

config = configparser.ConfigParser()
config["global"] = kept
with open(os.path.join(rootfs, "etc/pip.conf"), "w") as handle:
    config.write(handle)
print("pip settings in the image:", ", ".join(sorted(kept)) or "none", file=sys.stderr)
' "$rootfs"

# Slim, as the image it stands in for: no package cache, documentation or translations.
rm -rf "$rootfs/var/lib/apt/lists/"* "$rootfs/var/cache/apt/"* "$rootfs/var/log/"*.log \
    "$rootfs/usr/share/doc/"* "$rootfs/usr/share/man/"* "$rootfs/usr/share/locale/"* \
    "$rootfs/usr/share/info/"*

tar -C "$rootfs" -c . | docker import \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["python3"]' \
    - "$IMAGE" >/dev/null
echo "docker-base-image: built $IMAGE from Debian bookworm ($MIRROR)" >&2
