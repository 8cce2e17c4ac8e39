#!/usr/bin/env bash
# Every test: the export-sync check, the unit tests, every notebook executed by nbval, and the browser
# tests of the built book (built first if _build/html does not exist yet).
# Does its own set-up (ci/setup.sh, ci/browser-deps.sh). Usage: bash ci/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source ci/setup.sh

echo "== export check"
python ci/export.py --check
echo "== unit tests"
python -m pytest tests --ignore=tests/browser
echo "== notebooks (nbval)"
python -m pytest --nbval-lax --nbval-current-env book/
echo "== browser tests (headless Chromium against _build/html)"
source ci/browser-deps.sh
if [ ! -f _build/html/index.html ]; then
  bash ci/build.sh
fi
python -m pytest tests/browser
