#!/bin/sh
# Known vulnerabilities in what the images ship: pip-audit resolves the service's and the
# operator's requirement lists (as the Dockerfile writes them) and looks up every resolved
# version in the Python Packaging Advisory Database (through PyPI; `-s osv` asks OSV instead).
# A dependency that could not be looked up fails the run (--strict): nothing passes unseen.
#
#   pip install -e ".[audit]" && scripts/audit.sh [more pip-audit options]
set -eu
cd "$(dirname "$0")/.."
lists=$(mktemp -d)
trap 'rm -rf "$lists"' EXIT
python3 scripts/docker-requirements.py pyproject.toml > "$lists/service.txt"
python3 scripts/docker-requirements.py pyproject.toml --extra operator --only prometheus-client \
    > "$lists/operator.txt"
status=0
for image in service operator; do
    echo "==> the $image image's dependencies"
    python3 -m pip_audit --strict --progress-spinner off -r "$lists/$image.txt" "$@" || status=1
done
exit $status
