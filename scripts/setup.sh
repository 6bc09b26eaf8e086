#!/usr/bin/env bash
# Installs what kd-sweep needs and is missing; does nothing when everything is there.
#
#  * libtorch 2.11.0: by default the pip wheel torch==2.11.0, in a virtual environment made once per
#    machine and shared by every checkout: ${XDG_CACHE_HOME:-~/.cache}/kd-sweep/torch-2.11.0.
#    To use a libtorch you already have (a CUDA build, say): LIBTORCH=/path/to/libtorch make setup.
#  * the dataset: Debian's package dataset-fashion-mnist (/usr/share/datasets/fashion-mnist).
#  * with --test (what `make test` runs): Debian's chromium, for the test that renders index.html in a
#    real headless browser.
#
# Finally `.libtorch` in the checkout is linked to the libtorch in use; .cargo/config.toml points the
# build there, so nobody has to export anything.
set -euo pipefail

TORCH_VERSION=2.11.0
root=$(cd "$(dirname "$0")/.." && pwd)
cache=${XDG_CACHE_HOME:-$HOME/.cache}/kd-sweep
venv=$cache/torch-$TORCH_VERSION
say() { echo "setup: $*" >&2; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    say "need root for: $*"; exit 1; fi
}

torch_dir_of() { # prints the torch package folder of a python, if it has torch $TORCH_VERSION
  "$1" - <<PY 2>/dev/null
import torch, os
assert torch.__version__.split('+')[0] == "$TORCH_VERSION", torch.__version__
print(os.path.dirname(torch.__file__))
PY
}

# --- libtorch -------------------------------------------------------------------------------------
if [ -n "${LIBTORCH:-}" ]; then
  [ -f "$LIBTORCH/lib/libtorch_cpu.so" ] || { say "LIBTORCH=$LIBTORCH has no lib/libtorch_cpu.so"; exit 1; }
  # resolved, so that LIBTORCH=$PWD/.libtorch (the link itself) does not become a link to itself
  libtorch=$(readlink -f "$LIBTORCH")
else
  mkdir -p "$cache"
  exec 9>"$cache/.setup.lock"
  flock 9   # two checkouts setting up at once must not install twice
  if ! libtorch=$(torch_dir_of "$venv/bin/python"); then
    say "installing torch==$TORCH_VERSION (libtorch, ~4.5 GB) into $venv, once for this machine"
    # pip leaves a half-installed venv only on failure; the import check above then redoes it
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "torch==$TORCH_VERSION"
    libtorch=$(torch_dir_of "$venv/bin/python") || { say "torch install in $venv is not usable"; exit 1; }
  fi
  flock -u 9
fi
if [ "$(readlink "$root/.libtorch" 2>/dev/null)" != "$libtorch" ]; then
  ln -sfn "$libtorch" "$root/.libtorch"
  say "libtorch: $libtorch"
fi

# --- dataset --------------------------------------------------------------------------------------
if [ ! -e /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] &&
   [ ! -e /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte ]; then
  say "installing Debian's dataset-fashion-mnist"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q dataset-fashion-mnist >/dev/null ||
    { as_root apt-get update -q >/dev/null &&
      as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q dataset-fashion-mnist >/dev/null; }
fi

# --- test tools -----------------------------------------------------------------------------------
if [ "${1:-}" = "--test" ] && ! command -v chromium >/dev/null; then
  say "installing Debian's chromium (for the browser test of index.html)"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null ||
    { as_root apt-get update -q >/dev/null &&
      as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null; }
fi
