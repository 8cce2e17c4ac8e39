#!/usr/bin/env bash
# Run every reader notebook (colab/**/*.ipynb) the way a reader's Colab does, after
# ci/colab_widgets_check.ipynb (every widget path on the environment's ipywidgets): the package installed from
# a wheel (never editable), each notebook copied ALONE into an empty temporary folder and executed by
# nbval there, so nothing of the repository is on sys.path or in the working directory.
#
# Environments (pinned lists, with where each version was read, in ci/<name>-env.txt):
#   colab  Colab's versions today (Python 3.13, torch 2.11, ipywidgets 7.7.1, ipython 7.34, ...)
#   floor  the oldest the package claims (Python 3.10, pyproject.toml's torch floor, ...)
# Each environment is a virtual environment cached outside the checkout, in
#   ${T18_CACHE:-$HOME/.cache/transformer18}/venv-<name>-<hash of its list and interpreter>
# so an unchanged list reuses it between runs and a changed one makes a new one.
#
# Usage: bash ci/test-colab.sh [colab] [floor]        (default: both)
# Environment: T18_CACHE (cache folder), T18_NOTEBOOKS (folder of notebooks, default colab),
#              T18_PYTHON_<NAME> (interpreter for an environment, e.g. T18_PYTHON_FLOOR=/usr/bin/python3.10)
set -euo pipefail
shopt -s inherit_errexit
cd "$(dirname "$0")/.."
repo=$PWD
cache=${T18_CACHE:-$HOME/.cache/transformer18}
notebook_dir=${T18_NOTEBOOKS:-colab}
if [ $# -eq 0 ]; then set -- colab floor; fi
start=$SECONDS

mapfile -t notebooks < <(cd "$repo" && find "$notebook_dir" -name '*.ipynb' -not -path '*/.ipynb_checkpoints/*' | sort)
if [ ${#notebooks[@]} -eq 0 ]; then
  echo "ci/test-colab.sh: no notebooks under $notebook_dir/" >&2
  exit 1
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/t18-colab.XXXXXX")
trap 'rm -rf "$work"' EXIT

# The interpreter for a list's "# python: X.Y" line: $T18_PYTHON_<NAME>, else the first of pythonX.Y on
# PATH and pyenv's newest X.Y that runs and is X.Y (a pyenv shim of another version does not count).
find_python() {
  local name=$1 want=$2 var root candidate
  var="T18_PYTHON_$(echo "$name" | tr '[:lower:]-' '[:upper:]_')"
  if [ -n "${!var:-}" ]; then echo "${!var}"; return; fi
  root=$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")
  for candidate in "$(command -v "python$want" || true)" \
      "$(ls -d "$root"/versions/"$want".*/bin/python 2>/dev/null | sort -V | tail -n 1 || true)"; do
    if [ -n "$candidate" ] && [ "$("$candidate" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)" = "$want" ]; then
      echo "$candidate"
      return
    fi
  done
  echo "ci/test-colab.sh: no Python $want for environment '$name' (install python$want or set $var)" >&2
  return 1
}

# Create (or reuse) the cached environment of ci/<name>-env.txt; print its folder.
ensure_env() {
  local name=$1 list="ci/$1-env.txt"
  [ -f "$list" ] || { echo "ci/test-colab.sh: unknown environment '$name' (no $list)" >&2; return 1; }
  local want python version hash dir lock
  want=$(sed -n 's/^# python: *\([0-9.]*\).*/\1/p' "$list" | head -n 1)
  python=$(find_python "$name" "$want")
  version=$("$python" -c 'import sys; print(sys.version.split()[0])')
  hash=$( { cat "$list"; echo "python $version"; } | sha256sum | cut -c1-12)
  dir="$cache/venv-$name-$hash"
  mkdir -p "$cache"
  exec {lock}>"$cache/.venv-$name.lock"
  flock "$lock"   # one run at a time creates (or prunes) this name's environment
  if [ -x "$dir/bin/python" ] && [ -f "$dir/.t18-complete" ]; then
    echo "== env $name: reusing $dir (Python $version)" >&2
  else
    echo "== env $name: creating $dir (Python $version, $list)" >&2
    local t0=$SECONDS
    rm -rf "$dir.partial"
    "$python" -m venv "$dir.partial"
    "$dir.partial/bin/python" -m pip install --quiet --disable-pip-version-check -r "$list" >&2
    touch "$dir.partial/.t18-complete"
    rm -rf "$dir"
    mv "$dir.partial" "$dir"   # a venv's scripts name their folder: fix the shebangs after the move
    grep -rlI --exclude-dir=__pycache__ "$dir.partial" "$dir/bin" | xargs -r sed -i "s|$dir.partial|$dir|g"
    echo "== env $name: created in $((SECONDS - t0)) s" >&2
  fi
  # Environments of older lists of this name are several GB each (torch with its CUDA libraries): drop them.
  find "$cache" -maxdepth 1 -name "venv-$name-*" ! -name "venv-$name-$hash" -exec rm -rf {} + 2>/dev/null || true
  echo "$dir"
}

# The package's wheel, built from a copy of the sources (an in-tree build would leave build/ behind).
build_wheel() {
  local python=$1 src="$work/src"
  mkdir -p "$src" "$work/wheel"
  cp -r pyproject.toml README.md LICENSE src "$src/"
  "$python" -m pip wheel --quiet --disable-pip-version-check --no-deps -w "$work/wheel" "$src" >&2
  ls "$work"/wheel/transformer18-*.whl
}

# Fail unless the environment satisfies every requirement of the wheel (it is installed with --no-deps).
check_requirements() {
  local python=$1 wheel=$2
  "$python" - "$wheel" <<'EOF'
import sys
import zipfile
from importlib.metadata import PackageNotFoundError, version

from packaging.requirements import Requirement

with zipfile.ZipFile(sys.argv[1]) as whl:
    meta = next(n for n in whl.namelist() if n.endswith(".dist-info/METADATA"))
    lines = whl.read(meta).decode().splitlines()
bad = []
for line in lines:
    if not line.startswith("Requires-Dist:"):
        continue
    req = Requirement(line.split(":", 1)[1].strip())
    if req.marker is not None and not req.marker.evaluate({"extra": ""}):
        continue
    try:
        have = version(req.name)
    except PackageNotFoundError:
        bad.append(f"{req} (not installed)")
        continue
    if not req.specifier.contains(have, prereleases=True):
        bad.append(f"{req} (installed {have})")
if bad:
    sys.exit("the environment does not satisfy the package's requirements: " + "; ".join(bad))
EOF
}

# The kernels' IPython profile, outside the notebook's folder: kernel logging to errors (they log a notice
# about their TCP transport at WARNING level), and ci/colab_kernel_startup.py (moves every control once).
export IPYTHONDIR="$work/ipython"
mkdir -p "$IPYTHONDIR/profile_default/startup"
echo 'c.IPKernelApp.log_level = "ERROR"' > "$IPYTHONDIR/profile_default/ipython_kernel_config.py"
cp ci/colab_kernel_startup.py "$IPYTHONDIR/profile_default/startup/00-t18-widgets.py"

failed=()
report=()
for name in "$@"; do
  env_start=$SECONDS
  dir=$(ensure_env "$name")
  py="$dir/bin/python"
  wheel=$(build_wheel "$py")
  check_requirements "$py" "$wheel"
  "$py" -m pip install --quiet --disable-pip-version-check --no-deps --force-reinstall "$wheel"
  echo "== env $name: $("$py" -c 'import sys, torch, ipywidgets, matplotlib, numpy; print(f"Python {sys.version.split()[0]}, torch {torch.__version__}, ipywidgets {ipywidgets.__version__}, matplotlib {matplotlib.__version__}, numpy {numpy.__version__}")'), $(basename "$wheel")"
  for nb in ci/colab_widgets_check.ipynb "${notebooks[@]}"; do
    run="$work/run-$name/$(echo "${nb%.ipynb}" | tr '/' '_')"
    mkdir -p "$run"
    cp "$nb" "$run/"
    t0=$EPOCHREALTIME
    # Only the notebook in the folder; no PYTHONPATH, no user site, not the book build (live widgets).
    if (cd "$run" && env -u PYTHONPATH -u T18_BOOK_BUILD PYTHONNOUSERSITE=1 "$py" -c '
import sys, transformer18
assert "site-packages" in transformer18.__file__, transformer18.__file__
' && env -u PYTHONPATH -u T18_BOOK_BUILD PYTHONNOUSERSITE=1 "$py" -m pytest --nbval-lax --nbval-current-env \
        -p no:cacheprovider -q --no-header "$(basename "$nb")" >"$run/log" 2>&1); then
      status=ok
    else
      status=FAILED
      failed+=("$name: $nb")
      tail -n 60 "$run/log"
    fi
    secs=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
    line=$(printf '%-6s %-7s %7s s  %s' "$name" "$status" "$secs" "$nb")
    echo "$line"
    report+=("$line")
  done
  echo "== env $name: $((SECONDS - env_start)) s"
done

echo "== summary"
printf '%s\n' "${report[@]}"
echo "== total $((SECONDS - start)) s"
if [ ${#failed[@]} -gt 0 ]; then
  echo "FAILED notebooks:" >&2
  printf '  %s\n' "${failed[@]}" >&2
  exit 1
fi
