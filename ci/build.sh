#!/usr/bin/env bash
# Build the book into _build/html, executing every notebook; any warning or failing cell fails it.
# Does its own set-up (ci/setup.sh). Usage: bash ci/build.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source ci/setup.sh
source ci/book-stamp.sh
stamp=$(book_stamp)   # what the pages are built from, taken before the build

python ci/web_assets.py    # the widget manager and MathJax the pages serve (npm registry, pinned)
export T18_BOOK_BUILD=1  # widgets publish static figures and kernel-free sliders (transformer18.widgets)
jupyter-book build . --all -W -n --keep-going
echo "book built: _build/html/index.html"
python ci/notebook_times.py --budget 60   # each chapter within its time budget
echo "$stamp" > "$BOOK_STAMP_FILE"        # only a build that passed counts as current
