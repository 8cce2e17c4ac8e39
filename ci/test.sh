#!/usr/bin/env bash
# Every test: the export-sync check, the unit tests, and every notebook executed by nbval.
# Does its own set-up (ci/setup.sh). Usage: bash ci/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source ci/setup.sh

echo "== export check"
python ci/export.py --check
echo "== unit tests"
python -m pytest tests
echo "== notebooks (nbval)"
python -m pytest --nbval-lax --nbval-current-env book/
