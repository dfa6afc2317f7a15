#!/usr/bin/env bash
# Set up (idempotent) and run the whole test suite: lint (ruff; flake8-qgis's QGS rules, which
# find API that Qt6 / QGIS 4 removed), core tests, QGIS plugin tests.
# Extra arguments go to pytest, e.g. scripts/test.sh -k tpi
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/setup.sh"
# shellcheck source=scripts/env.sh
source "$ROOT/scripts/env.sh"
cd "$ROOT"
echo "== ruff"
.venv/bin/ruff check .
echo "== flake8-qgis (QGS rules, .flake8)"
.venv/bin/flake8 __init__.py plugin.py algorithms core
echo "== pytest"
.venv/bin/python -m pytest tests -q -p no:randomly "$@"
