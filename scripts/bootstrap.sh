#!/usr/bin/env bash
# Installs what the project needs on a Debian/Ubuntu machine, skipping what is there:
# PostgreSQL with PostGIS, Chromium (browser tests), CJK fonts (map labels), GDAL's tools
# (benchmarks), poppler (PDF tests), QGIS's Python bindings and providers (tests/test_qgis.py runs Debian's
# QGIS headless), Node.js (map assets), then the Python environment in .venv.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

missing=()
want() { dpkg -s "$1" >/dev/null 2>&1 || missing+=("$1"); }
want postgresql
want postgresql-contrib
want fonts-noto-cjk
want gdal-bin
want poppler-utils  # pdftotext, pdftoppm: the battle map tests read the PDF back
want time  # GNU time: the import/export benchmark's peak-memory figures
want python3-venv
want python3-qgis  # PyQGIS for the system python3 (/usr/bin/python3): tests/test_qgis.py
want qgis-providers  # QGIS's OAPIF, vector tile and XYZ providers
command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || missing+=(chromium)
command -v npm >/dev/null 2>&1 || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing system packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# PostGIS is packaged per PostgreSQL major version: match the one installed.
pg_major=$(ls /usr/lib/postgresql | sort -n | tail -1)
if ! dpkg -s "postgresql-${pg_major}-postgis-3" >/dev/null 2>&1; then
  echo "installing PostGIS for PostgreSQL ${pg_major}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "postgresql-${pg_major}-postgis-3" >/dev/null
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=$(cat pyproject.toml constraints.txt | sha256sum | cut -c1-16)
if [ "$(cat .venv/.bootstrap-stamp 2>/dev/null)" != "$stamp" ]; then
  echo "installing the Python environment"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -c constraints.txt -e '.[test]'
  echo "$stamp" > .venv/.bootstrap-stamp
fi

# The maps' scripts, stylesheets and fonts (Leaflet, VectorGrid, folium's page template), pinned in
# package-lock.json, installed into node_modules/ and served by the service under /static/vendor/.
if ! cmp -s package-lock.json node_modules/.bootstrap-lock 2>/dev/null; then
  echo "installing the map assets (npm ci)"
  npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
  cp package-lock.json node_modules/.bootstrap-lock
fi
