# Sourced by ci/test.sh and ci/build.sh: use the active virtual environment, or create and activate
# .venv, then install everything in requirements.txt (quick when it is already installed).
if [ -z "${VIRTUAL_ENV:-}" ]; then
  if [ ! -x .venv/bin/python ]; then
    echo "ci/setup.sh: creating .venv"
    python3 -m venv .venv
  fi
  # shellcheck disable=SC1091
  source .venv/bin/activate
fi
python -m pip install --quiet --disable-pip-version-check -r requirements.txt
# Kernels started by nbval and the book build log a notice about their local TCP transport at
# WARNING level; it is not a problem of the book, so keep kernel logging to errors in this venv.
mkdir -p "$VIRTUAL_ENV/etc/ipython"
echo 'c.IPKernelApp.log_level = "ERROR"' > "$VIRTUAL_ENV/etc/ipython/ipython_kernel_config.py"
