#!/usr/bin/env bash
# The whole test suite — what `cargo test --release` runs — in two lanes at once.
#
# `cargo test` runs its test binaries one after another, and on a 2-core machine that leaves half the
# machine idle: the PyTorch replays run on one thread, the SLURM tests partly wait for the scheduler,
# and Python starts up for seconds at a time (a fresh clone's `make test` measured 44 % of two cores
# busy). So the binaries are built once, then run two at a time by two lanes that take the next one
# from one queue: the longest first (LONGEST below, as measured), then every other binary — found,
# not listed, so a new tests/*.rs file runs without editing this script. Longest first, so that the
# end of the suite is short binaries on both cores, not one long one alone. Each binary's output is
# printed whole when it ends (never interleaved), then a table of every binary's result and time.
# Exit status: 0 only when every binary passed.
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

# the longest binaries, longest first (their seconds alone at 010800a: slurm 127, e2e 218 on both
# cores, pytorch_parity 92 on one, checkpoints 56, search 52); slurm first, as it partly waits
LONGEST="slurm e2e pytorch_parity checkpoints search hardening html"

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

# the queue: one binary a line, the longest first
while read -r name path; do
    if [[ -n "$wanted" && " $wanted " != *" ${name%_bin} "* ]]; then continue; fi
    rank=99
    i=0
    for long in $LONGEST; do
        if [[ $long == "$name" ]]; then rank=$i; fi
        i=$((i + 1))
    done
    printf '%02d %s %s\n' "$rank" "$name" "$path"
done <"$out/binaries" | sort -s -n -k1,1 | cut -d' ' -f2- >"$out/queue"

# takes the queue's first line into $name and $path; false when the queue is empty
next_binary() {
    local line
    {
        flock 8
        line=$(head -n 1 "$out/queue")
        sed -i 1d "$out/queue"
    } 8>"$out/queue.lock"
    [[ -n $line ]] || return 1
    name=${line%% *}
    path=${line#* }
}

# runs binaries from the queue until it is empty: output to a file, printed whole (under a lock)
run_lane() {
    local name path start status secs
    while next_binary; do
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
    done
}

started=$(date +%s)
run_lane &
lane1=$!
run_lane
wait "$lane1"
# the documentation tests, as `cargo test` ends with them
if [[ -z "$wanted" ]]; then
    cargo test --release --doc -q >"$out/doc.log" 2>&1
    echo "doc-tests $? 0" >>"$out/results"
    cat "$out/doc.log"
fi

if [[ ! -s "$out/results" ]]; then
    echo "test.sh: no test binary matched: $wanted" >&2
    exit 1
fi
echo
echo "──── summary ($(($(date +%s) - started)) s in all, two lanes)"
failed=0
while read -r name status secs; do
    if [[ $status == 0 ]]; then word=ok; else word=FAILED; failed=1; fi
    printf '%-16s %-7s %5s s\n' "$name" "$word" "$secs"
done <"$out/results"
exit $failed
