#!/usr/bin/env bash
# Set up (idempotent) and run the whole test suite: lint, core tests, QGIS plugin tests.
# Extra arguments go to pytest, e.g. scripts/test.sh -k tpi
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/setup.sh"
# shellcheck source=scripts/env.sh
source "$ROOT/scripts/env.sh"
cd "$ROOT"
echo "== ruff"
.venv/bin/ruff check .
echo "== pytest"
.venv/bin/python -m pytest tests -q -p no:randomly "$@"
