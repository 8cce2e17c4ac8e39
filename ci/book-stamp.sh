# Sourced by ci/build.sh and ci/test.sh. book_stamp prints one hash of everything the built book is made
# from (the chapters, the package they import, the configuration, the Sphinx fix-ups and web assets'
# pins). ci/build.sh writes it beside the pages it built; ci/test.sh rebuilds when it differs, so the
# browser tests never test pages older than the checkout.
BOOK_STAMP_FILE=_build/html/.t18-source-stamp
book_stamp() {
  find book src ci/sphinx_ext ci/web ci/web_assets.py _config.yml _toc.yml pyproject.toml -type f \
    ! -path '*/__pycache__/*' ! -path '*.egg-info/*' ! -name '*.pyc' ! -path '*/.ipynb_checkpoints/*' -print0 \
    | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1
}
book_is_current() {
  [ -f _build/html/index.html ] && [ -f "$BOOK_STAMP_FILE" ] && [ "$(cat "$BOOK_STAMP_FILE")" = "$(book_stamp)" ]
}
