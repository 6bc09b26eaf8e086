#!/usr/bin/env bash
# Everything GPU-side in one call. Build here first (`make build`), stage, carry bench/ to the GPU
# machine and run it there:
#
#   bash bench/gpu.sh --stage            # here: copies the binary and Fashion-MNIST into bench/
#   bash bench/gpu.sh [DATA_DIR] [TORCH_LIB]   # there
#
# DATA_DIR: a Fashion-MNIST folder (default: bench/data). TORCH_LIB: the GPU machine's libtorch lib
# folder (default: /opt/torch/lib, else the lib folder of the torch its python3 imports). The binary
# needs libtorch 2.11.0; a cu130 build needs driver >= 580, a cu12x build of the same version works
# without rebuilding (only LD_LIBRARY_PATH changes).
#
# 1. preflight: driver, GPUs, glibc, `ldd` of the binary against TORCH_LIB (every library found,
#    libtorch_cuda.so among them), `kd-sweep devices` (CUDA backend registered, GPUs visible). Stops
#    here, with the reason, when no GPU is usable.
# 2. `kd-sweep bench --device cuda:0`: ceiling, throughput vs PyTorch (the reference script is embedded
#    in the binary), feeding, the method ratio, workers-per-GPU scaling (1, 2, 4, 8), memory, fused
#    students for G = 1, 4, 16, 64.
# Writes one Markdown report, $OUT/BENCHMARKS-gpu.md (or /tmp/BENCHMARKS-gpu.md).
set -uo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
if [ "${1:-}" = "--stage" ]; then
  set -e
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
out=${OUT:-/tmp}/BENCHMARKS-gpu.md
work=/tmp/kd-bench-gpu

{
  echo "# kd-sweep on a GPU ($(date -u +%Y-%m-%d))"
  echo
  echo "## 0. Preflight"
  echo
  echo '```'
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 || echo "nvidia-smi: not available"
  echo "glibc: $(ldd --version 2>&1 | head -1)"
  echo "torch lib: $lib"
  echo "binary needs:"
  ldd "$bin" | grep -E 'torch|c10|cuda|not found' | sed 's/^/  /'
  "$bin" devices 2>&1
  echo '```'
  echo
} > "$out"
cat "$out"
if ldd "$bin" | grep -q 'not found'; then
  echo "preflight: some libraries of $bin are not found under $lib; stopping" | tee -a "$out"
  exit 1
fi
if ! "$bin" devices --json | grep -q '"device_count": [1-9]'; then
  echo "preflight: libtorch sees no usable GPU (see above); stopping" | tee -a "$out"
  exit 1
fi
py=$(command -v python3 || true)
"$bin" bench --device cuda:0 --data "$data" --work "$work" ${py:+--python "$py"} --out "$work.md"
status=$?
cat "$work.md" >> "$out" 2>/dev/null
exit $status
