# Sourced by ci/test.sh: Debian's Chromium for the browser tests (Playwright drives it; it never
# downloads a browser of its own) and a CJK font so the screenshots show the Chinese questions.
if [ -n "${T18_CHROMIUM:-}" ]; then
  : # a browser named by the caller (GitHub's runner has Chrome): nothing to install
elif ! command -v chromium >/dev/null 2>&1 || ! fc-list 2>/dev/null | grep -qi "wqy\|cjk"; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "ci/browser-deps.sh: installing chromium and fonts-wqy-microhei with apt-get"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-wqy-microhei >/dev/null
  elif ! command -v chromium >/dev/null 2>&1; then
    echo "The browser tests need Chromium: install Debian's 'chromium' package (or set T18_CHROMIUM)." >&2
    exit 1
  fi
fi
