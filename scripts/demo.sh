#!/usr/bin/env bash
# One command from a fresh machine: install, load the demo city, run the API.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
.venv/bin/gis demo load --parcels "${DEMO_PARCELS:-5000}"
exec .venv/bin/gis serve "$@"
