#!/usr/bin/env bash
# Every test: the export-sync and reader-copy checks, the unit tests, every notebook executed, and the
# browser tests of the built book.
# Notebooks run once each per environment: the book build executes every chapter in this environment
# (any failing cell fails it), so this script makes sure the build is current (rebuilding it when the
# sources changed since it was made) instead of executing the chapters a second time; ci/test-colab.sh
# then runs every reader copy (colab/) in a Colab-like environment and on the oldest supported torch.
# Does its own set-up (ci/setup.sh, ci/browser-deps.sh). Usage: bash ci/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source ci/setup.sh
source ci/book-stamp.sh

echo "== export check"
python ci/export.py --check
echo "== reader copies check"
python ci/reader_notebooks.py --check
echo "== unit tests"
python -m pytest tests --ignore=tests/browser
echo "== notebooks in this environment: the book build"
if book_is_current; then
  echo "_build/html was built from this checkout: every notebook passed in it"
else
  echo "_build/html is missing or older than the checkout: building the book"
  bash ci/build.sh
fi
echo "== reader copies in Colab-like environments (nbval)"
# The two environments run side by side, one thread each: on two cores that takes about as long as one
# of them with two threads (two torch processes of two threads each would slow each other ~10x).
logs=$(mktemp -d)
pids=()
for env_name in colab floor; do
  OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 bash ci/test-colab.sh "$env_name" > "$logs/$env_name.log" 2>&1 &
  pids+=($!)
done
colab_status=0
for i in 0 1; do wait "${pids[$i]}" || colab_status=1; done
cat "$logs/colab.log" "$logs/floor.log"
rm -rf "$logs"
[ "$colab_status" -eq 0 ] || { echo "ci/test-colab.sh failed (above)" >&2; exit 1; }
echo "== browser tests (headless Chromium against _build/html, and a slider on ipywidgets 7)"
source ci/browser-deps.sh
# tests/browser/test_ipywidgets7.py draws a slider built by the Colab-like environment made above: fail,
# don't skip, if it is missing.
T18_REQUIRE_IPYWIDGETS7=1 python -m pytest tests/browser
