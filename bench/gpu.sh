#!/usr/bin/env bash
# The benchmark on a GPU machine, in one call. Build here first (`make build`), then carry the binary,
# this script and the dataset to the GPU machine and run it there:
#
#   bash bench/gpu.sh [DATA_DIR] [LIBTORCH_LIB]
#
# DATA_DIR: a Fashion-MNIST folder (default: bench/data, where `bash bench/gpu.sh --stage` copies
# Debian's files). LIBTORCH_LIB: the GPU machine's libtorch lib folder (default: /opt/torch/lib, or the
# lib folder of the `torch` its python3 imports). The binary needs a libtorch of the same version and
# CUDA major version as the one it was built against (torch 2.11.0+cu130 from the pip wheel).
# Prints the Markdown report (every section, including fused training for G = 1, 4, 16, 64) and
# leaves it in $OUT/BENCHMARKS-gpu.md when $OUT is set.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
if [ "${1:-}" = "--stage" ]; then
  mkdir -p "$here/bench/data" "$here/bench/bin"
  cp /usr/share/datasets/fashion-mnist/*.gz "$here/bench/data/"
  cp "$here/target/release/kd-sweep" "$here/bench/bin/"
  echo "staged bench/data and bench/bin/kd-sweep; carry bench/ to the GPU machine"
  exit 0
fi
data=${1:-$here/bench/data}
lib=${2:-}
if [ -z "$lib" ]; then
  if [ -d /opt/torch/lib ]; then lib=/opt/torch/lib
  else lib=$(python3 -c 'import torch, os; print(os.path.join(os.path.dirname(torch.__file__), "lib"))'); fi
fi
bin=$here/bench/bin/kd-sweep
[ -x "$bin" ] || bin=$here/target/release/kd-sweep
export LD_LIBRARY_PATH=$lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
out=${OUT:-/tmp}/BENCHMARKS-gpu.md
"$bin" bench --device cuda:0 --data "$data" --work /tmp/kd-bench-gpu --python "$(command -v python3)" --out "$out"
