#!/usr/bin/env bash
# The whole test suite — what `cargo test --release` runs — in two lanes at once.
#
# `cargo test` runs its test binaries one after another, and on a 2-core machine that leaves half the
# machine idle: the PyTorch replays run on one thread under one lock, the SLURM tests mostly wait for
# the scheduler, and Python starts up for seconds at a time (a fresh clone's `make test` measured
# 44 % of two cores busy). So the binaries are built once, then split into two lanes that run side
# by side: lane 1 the single-threaded and waiting ones (LANE1 below), lane 2 every other binary —
# found, not listed, so a new tests/*.rs file runs without editing this script. Each binary's
# output is printed whole when it ends (never interleaved), then a table of every binary's result
# and time. Exit status: 0 only when every binary passed.
#
#   scripts/test.sh            # the suite (`make test` runs it after the set-up)
#   scripts/test.sh e2e cli    # only these binaries (names as in tests/, `kd_sweep` = unit tests)
set -uo pipefail
cd "$(dirname "$0")/.."

# cargo passes .cargo/config.toml's [env] to the binaries it runs; run here, they need it too
export LIBTORCH="${LIBTORCH:-$PWD/.libtorch}"
export RUST_BACKTRACE="${RUST_BACKTRACE:-1}"
# two lanes share the cores: OpenMP threads that find no work sleep instead of spinning, so a lane's
# libtorch does not burn the other's time (measured: a fused test under two busy cores took 15.4 s
# spinning, 10.6 s passive, 4.1 s alone). Where threads wait never changes a result.
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"

LANE1="pytorch_parity slurm methods_parity weights torchscript numerics"

out=$(mktemp -d "${TMPDIR:-/tmp}/kd-sweep-tests.XXXXXX")
trap 'rm -rf "$out"' EXIT

# build every test binary once (as `cargo test` does first), and learn their paths
if ! cargo test --release --no-run --message-format=json-render-diagnostics >"$out/build.json"; then
    echo "test.sh: the tests did not build" >&2
    exit 101
fi
# "name path" per test binary (`kd_sweep`: the library's unit tests; `kd_sweep_bin`: main.rs's)
python3 - "$out/build.json" >"$out/binaries" <<'EOF'
import json, sys
for line in open(sys.argv[1]):
    m = json.loads(line)
    if m.get("reason") != "compiler-artifact" or not m.get("executable"):
        continue
    if not m.get("profile", {}).get("test"):
        continue
    t = m["target"]
    name = t["name"].replace("-", "_") + ("_bin" if t["kind"] == ["bin"] else "")
    print(name, m["executable"])
EOF

wanted="$*"
in_lane1() { [[ " $LANE1 " == *" $1 "* ]]; }

# runs the binaries of one lane in turn: output to a file, printed whole (under a lock) when done
run_lane() {
    local lane=$1 name path start status secs
    while read -r name path; do
        if [[ -n "$wanted" && " $wanted " != *" ${name%_bin} "* ]]; then continue; fi
        if [[ $lane == 1 ]] && ! in_lane1 "$name"; then continue; fi
        if [[ $lane == 2 ]] && in_lane1 "$name"; then continue; fi
        start=$(date +%s)
        "$path" >"$out/$name.log" 2>&1
        status=$?
        secs=$(($(date +%s) - start))
        echo "$name $status $secs" >>"$out/results"
        {
            flock 9
            echo "──── $name ($path): exit $status, ${secs} s"
            cat "$out/$name.log"
        } 9>"$out/print.lock"
    done <"$out/binaries"
}

started=$(date +%s)
run_lane 1 &
lane1=$!
run_lane 2
wait "$lane1"
# the documentation tests, as `cargo test` ends with them
if [[ -z "$wanted" ]]; then
    cargo test --release --doc -q >"$out/doc.log" 2>&1
    echo "doc-tests $? 0" >>"$out/results"
    cat "$out/doc.log"
fi

echo
echo "──── summary ($(($(date +%s) - started)) s in all, two lanes)"
failed=0
while read -r name status secs; do
    if [[ $status == 0 ]]; then word=ok; else word=FAILED; failed=1; fi
    printf '%-16s %-7s %5s s\n' "$name" "$word" "$secs"
done <"$out/results"
if [[ ! -s "$out/results" ]]; then
    echo "test.sh: no test binary matched: $wanted" >&2
    exit 1
fi
exit $failed
