#!/bin/sh
# Every static check the project keeps: ruff (lint and format), mypy on the service and the
# operator, the import contract (lint-imports, configured in pyproject.toml) and bandit (no
# finding of high severity). All of them run
# even when one fails, so one pass shows everything; the exit status is non-zero if any failed.
#
#   scripts/lint.sh        # from anywhere; needs the dev extra (pip install -e ".[dev]")
set -u
cd "$(dirname "$0")/.."

failed=""
check() {
    echo "==> $*"
    if ! "$@"; then
        failed="$failed
  $*"
    fi
}

check ruff check .
check ruff format --check .
check mypy service/somamemory operator/somamemory_operator
check lint-imports
check bandit --quiet --recursive service operator --severity-level high

if [ -n "$failed" ]; then
    echo "lint failed:$failed" >&2
    exit 1
fi
echo "lint passed"
