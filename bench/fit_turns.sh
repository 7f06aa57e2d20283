#!/bin/bash
# topicd fit with several binaries, in turns (bench/NOTES.md, "The whole
# process again"):
#
#   bench/fit_turns.sh ROUNDS SPEC INPUT BIN...
#
# Each round runs every BIN in turn: `BIN fit --quiet --spec SPEC INPUT`
# (INPUT the documents; put "--matrix-market-in X.mtx" in quotes for a
# matrix). Prints one line per run: wall ms (date around it), timings.init
# and timings.fit (s), the error to ten digits and the iterations.
set -eu
rounds=$1 spec=$2 input=$3
shift 3
for ((r = 1; r <= rounds; r++)); do
    for bin in "$@"; do
        s=$(date +%s%N)
        # shellcheck disable=SC2086 # INPUT may be two words
        out=$("$bin" fit --quiet --spec "$spec" $input)
        e=$(date +%s%N)
        echo "$out" | python3 -c 'import json, sys
r = json.load(sys.stdin); t = r["timings"]
print("round %s %s: wall %d ms, init %.3f s, fit %.3f s, error %.10f, %d it" % (
    sys.argv[1], sys.argv[2], int(sys.argv[3]), t.get("init", 0), t.get("fit", 0),
    r["reconstruction_error"], r["n_iter"]))' "$r" "$bin" $(((e - s) / 1000000))
    done
done
