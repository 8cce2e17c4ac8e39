#!/usr/bin/env bash
# Run notebooks through nbval under conditions that differ from the book build, to catch asserts that
# hold only on the machine that built the book (float rounding that changes with thread count and
# kernels, timings under load, training outcomes of one seed). Not part of .ci/run (each mode executes
# every notebook again, ~10 min); run it before changing an assert, a tolerance or a training recipe.
#
# Usage: bash ci/stress.sh [MODE ...] [-- NOTEBOOK ...]
#   one-thread     OMP_NUM_THREADS=1 and torch.set_num_threads(1) in every kernel
#   four-threads   OMP_NUM_THREADS=4 and torch.set_num_threads(4), on however many cores there are
#   busy           one thread per kernel, and a CPU-burning process on every core: the notebook gets about
#                  half a core, like a machine several times slower under load. (A notebook with torch's
#                  two OpenMP threads beside a burner, even one at nice 19, stalls at every barrier: the
#                  capstone's training ran over 20 min instead of 4, measured here.)
#   seed-1, seed-2 every seed the notebooks set (torch.manual_seed, torch.Generator().manual_seed,
#                  random.Random, the course's set_seed) shifted by 1 or 2: other initial weights, batches
#                  and data, to show that an asserted training outcome is not one seed's luck
# Default modes: one-thread four-threads busy. Default notebooks: every notebook under book/.
# Prints each mode's time and fails on the first mode with a failing notebook.
set -euo pipefail
cd "$(dirname "$0")/.."
source ci/setup.sh

modes=()
notebooks=()
while [ $# -gt 0 ]; do
  case "$1" in
    --) shift; notebooks=("$@"); break ;;
    one-thread|four-threads|busy|seed-1|seed-2) modes+=("$1"); shift ;;
    *) echo "ci/stress.sh: unknown mode '$1' (one-thread, four-threads, busy, seed-1, seed-2)" >&2; exit 2 ;;
  esac
done
[ ${#modes[@]} -gt 0 ] || modes=(one-thread four-threads busy)
[ ${#notebooks[@]} -gt 0 ] || notebooks=(book/)

# Kernels read IPython's startup files from $IPYTHONDIR: the hook below sets the thread count and shifts
# the seeds there, in the kernel that runs the notebook, not in pytest's process.
ipython_dir=$(mktemp -d)
burner=""
cleanup() {
  [ -n "$burner" ] && kill $burner 2>/dev/null || true
  rm -rf "$ipython_dir"
}
trap cleanup EXIT
mkdir -p "$ipython_dir/profile_default/startup"
cp ci/stress_startup.py "$ipython_dir/profile_default/startup/00-stress.py"

failed=()
for mode in "${modes[@]}"; do
  unset T18_STRESS_THREADS T18_STRESS_SEED_SHIFT
  threads_env=()
  case "$mode" in
    one-thread) threads_env=(OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 T18_STRESS_THREADS=1) ;;
    four-threads) threads_env=(OMP_NUM_THREADS=4 MKL_NUM_THREADS=4 T18_STRESS_THREADS=4) ;;
    busy)
      threads_env=(OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 T18_STRESS_THREADS=1)
      burner=""
      for _ in $(seq "$(nproc)"); do python -c "while True: pass" & burner="$burner $!"; done ;;
    seed-1) threads_env=(T18_STRESS_SEED_SHIFT=1) ;;
    seed-2) threads_env=(T18_STRESS_SEED_SHIFT=2) ;;
  esac
  echo "== stress: $mode (${notebooks[*]})"
  start=$SECONDS
  status=0
  env "${threads_env[@]}" IPYTHONDIR="$ipython_dir" \
    python -m pytest --nbval-lax --nbval-current-env -p no:cacheprovider -q "${notebooks[@]}" || status=$?
  echo "== stress: $mode took $((SECONDS - start)) s, exit status $status"
  if [ -n "$burner" ]; then kill $burner 2>/dev/null || true; wait $burner 2>/dev/null || true; burner=""; fi
  [ "$status" -eq 0 ] || failed+=("$mode")
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "ci/stress.sh: notebooks failed under: ${failed[*]}" >&2
  exit 1
fi
echo "ci/stress.sh: every notebook passed under: ${modes[*]}"
