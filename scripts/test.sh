#!/usr/bin/env bash
# The whole test suite, from a fresh machine: install what is missing, lint (ruff), then pytest.
# The tests start their own PostgreSQL+PostGIS cluster in a temporary folder.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
.venv/bin/ruff check --quiet .
exec .venv/bin/python -m pytest "$@"
