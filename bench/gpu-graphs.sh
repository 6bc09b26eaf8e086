#!/usr/bin/env bash
# CUDA graphs (`[schedule] cuda_graphs`) on a lent GPU, in ONE device call (about 4-6 minutes on an
# H100/H200). Built and rehearsed on the CPU (tests/graphs.rs); this is what only a GPU can show:
#
#   equal   a small SGD sweep (a tutorial teacher with dropout, a resnet8 teacher with batch norm, a
#           KD student of each; 2 epochs; synthetic 28x28 data made here) trained with
#           --deterministic, once eager and once with --cuda-graphs, in fresh folders: are the runs'
#           numbers (train losses, accuracies) bit-identical? Graph replays read the generator's seed
#           and offset set before each step, so they should be. Wall and training seconds of each.
#   bench   `kd-sweep bench --device cuda:0 --sections networks`: the field's networks (15,000
#           images timed, scaled to a 45,000-image epoch), kd-sweep eager and with graphs, fp32 and
#           bf16, against plain PyTorch (#29's targets); then the same with --channels-last on both
#           sides (#29 item 3: does channels-last help on the GPU, in bf16 above all?).
#
# HOW TO RUN
#   here:   cargo build --release && mkdir -p target/gpu
#           objcopy --strip-debug target/release/kd-sweep target/gpu/kd-sweep
#           cp bench/gpu-graphs.sh target/gpu/ && git describe --always --dirty > target/gpu/COMMIT
#   there:  device run, carry ["target/gpu"], command: bash target/gpu/gpu-graphs.sh
#           (the checkout's bench/*.py travel with the working tree; results land in $OUT)
set -u
SELF_DIR=$(cd "$(dirname "$0")" && pwd)
BIN=${KD_BIN:-$SELF_DIR/kd-sweep}
OUT=${OUT:-/tmp/kdg-out}
W=${KDG_WORK:-/tmp/kdg}
DEVICE=${KDG_DEVICE:-cuda:0}
mkdir -p "$OUT" "$W/data"
log() { echo "[$(date +%T)] $*" | tee -a "$OUT/summary.txt"; }

TORCH_LIB=${TORCH_LIB:-$(python3 -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))' 2>/dev/null)}
export LD_LIBRARY_PATH="${TORCH_LIB}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
if ! ldconfig -p 2>/dev/null | grep -q 'libcuda\.so\.1' && [ -e /usr/local/nvidia/lib64/libcuda.so.1 ]; then
  export LD_LIBRARY_PATH="$LD_LIBRARY_PATH:/usr/local/nvidia/lib64"
fi
log "binary: $BIN (commit $(cat "$SELF_DIR/COMMIT" 2>/dev/null || echo unknown)); torch lib: $TORCH_LIB"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | tee -a "$OUT/summary.txt"

# --- data: 10 classes of noisy 28x28 templates, IDX files as MNIST's ---------------------------
python3 - "$W/data" <<'PY'
import struct, sys, numpy as np
out = sys.argv[1]
rng = np.random.default_rng(7)
templates = np.kron(rng.random((10, 7, 7)), np.ones((4, 4)))
def idx(name, dims, data):
    with open(f"{out}/{name}", "wb") as f:
        f.write(struct.pack(">I", 0x0800 | len(dims)))
        for d in dims:
            f.write(struct.pack(">I", d))
        f.write(data)
for prefix, n, seed in (("train", 8000, 1), ("t10k", 2000, 2)):
    r = np.random.default_rng(seed)
    y = r.integers(0, 10, n)
    x = 0.5 * templates[y] + 0.5 * r.random((n, 28, 28))
    idx(f"{prefix}-images-idx3-ubyte", (n, 28, 28), (x * 255).astype(np.uint8).tobytes())
    idx(f"{prefix}-labels-idx1-ubyte", (n,), y.astype(np.uint8).tobytes())
PY

# --- equal: eager and graphed runs of one deterministic sweep ------------------------------------
sweep() { # $1: teacher model, $2: file
  cat > "$2" <<EOF
name = "$3"
seeds = [0]
[data]
dataset = "mnist"
path = "$W/data"
validation = 1000
[teacher]
model = "$1"
epochs = 2
batch_size = 64
lr = 0.05
optimizer = "sgd"
momentum = 0.9
weight_decay = 5e-4
[student]
epochs = 2
batch_size = 64
lr = 0.05
optimizer = "sgd"
momentum = 0.9
[grid]
temperature = [4]
alpha = [0.5]
baseline = false
[schedule]
devices = "$DEVICE"
fuse = false
deterministic = true
EOF
}
for model in tutorial-teacher resnet8; do
  sweep "$model" "$W/$model.toml" "$model"
  for mode in eager graphs; do
    flag=(); [ "$mode" = graphs ] && flag=(--cuda-graphs)
    start=$(date +%s.%N)
    timeout 150 "$BIN" run "$W/$model.toml" --results "$W/results-$mode" "${flag[@]}" -q > "$OUT/$model-$mode.log" 2>&1
    rc=$?
    end=$(date +%s.%N)
    log "$model $mode: exit $rc, wall $(python3 -c "print(round($end - $start, 1))") s"
    tail -3 "$OUT/$model-$mode.log" | sed 's/^/    /' | tee -a "$OUT/summary.txt"
  done
done
python3 - "$W" "$OUT/summary.txt" <<'PY'
import csv, os, sys
w, summary = sys.argv[1], open(sys.argv[2], "a")
def table(mode, name, file, key):
    path = f"{w}/results-{mode}/{name}/{file}"
    if not os.path.exists(path):
        return None
    return {tuple(r[k] for k in key): r for r in csv.DictReader(open(path))}
for name in ("tutorial-teacher", "resnet8"):
    for file, key in (("runs.csv", ("run_id",)), ("epochs.csv", ("run_id", "epoch"))):
        a, b = table("eager", name, file, key), table("graphs", name, file, key)
        if a is None or b is None:
            print(f"{name} {file}: missing (eager {a is not None}, graphs {b is not None})", file=summary)
            continue
        for k in sorted(a):
            ra, rb = a[k], b.get(k, {})
            cols = [c for c in ra if "seconds" not in c]
            diff = [c for c in cols if ra.get(c) != rb.get(c)]
            same = "bit-identical" if not diff else "DIFFERENT in " + ", ".join(
                f"{c} ({ra.get(c)} vs {rb.get(c)})" for c in diff[:4])
            print(f"{name} {file} {'/'.join(k)}: {same}; seconds eager {ra.get('seconds')} graphs {rb.get('seconds')}",
                  file=summary)
PY
tar czf "$OUT/graphs-runs.tar.gz" -C "$W" results-eager results-graphs 2>/dev/null

# --- bench: the field's networks, in the default layout and channels-last ------------------------
# (each run with a limit of its own, so that a slow one leaves the other's numbers; the PyTorch side
# stops itself after 150 s)
for layout in default channels-last; do
  flag=(); [ "$layout" = channels-last ] && flag=(--channels-last)
  log "bench networks ($layout)"
  timeout 270 "$BIN" bench --device "$DEVICE" --sections networks "${flag[@]}" ${KDG_QUICK:+--quick} --python python3 \
    --work "$W/bench-$layout" --out "$OUT/bench-networks-$layout.md" > "$OUT/bench-$layout.log" 2>&1
  log "bench ($layout) exit $?"
  cat "$OUT/bench-networks-$layout.md" >> "$OUT/summary.txt" 2>/dev/null
done
cat "$OUT/summary.txt"
