#!/usr/bin/env bash
# Build build/dist/demsr-<version>.zip for plugins.qgis.org and check it as its validator does.
# Extra arguments go to scripts/package.py (e.g. --out DIR).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
exec /usr/bin/python3 "$ROOT/scripts/package.py" "$@"
