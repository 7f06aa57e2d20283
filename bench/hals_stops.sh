#!/bin/sh
# hals's error against cd's (= scikit-learn's) to ten digits, for the
# table of bench/NOTES.md, "hals stops on its own rule":
#
#   bench/hals_stops.sh REF_BIN BIN... -- MTX:K ...
#
# For each Matrix Market file MTX and k, seeds 0 and 1: cd with REF_BIN
# (the reference), then hals with each BIN; prints cd's error and
# iterations, and per BIN hals's iterations, error and error relative to
# cd's. The matrices: bench/NOTES.md says how each was written.
set -eu
ref=$1
shift
bins=""
while [ "$1" != "--" ]; do bins="$bins $1"; shift; done
shift
fit() { # BIN MTX K SEED SOLVER -> "error iterations"
    "$1" fit --quiet --spec "{\"model\":{\"method\":\"nmf\",\"n_topics\":$3,\"solver\":\"$5\"},\"seed\":$4}" \
        --matrix-market-in "$2" |
        python3 -c 'import json, sys; r = json.load(sys.stdin)
print("%.10f %d" % (r["reconstruction_error"], r["n_iter"]))'
}
for job in "$@"; do
    mtx=${job%:*} k=${job##*:}
    for seed in 0 1; do
        set -- $(fit "$ref" "$mtx" "$k" "$seed" cd)
        cd_err=$1
        line="$(basename "$mtx") k=$k seed $seed: cd $1 in $2 it"
        for bin in $bins; do
            set -- $(fit "$bin" "$mtx" "$k" "$seed" hals)
            rel=$(python3 -c "print('%+.2e' % (($1 - $cd_err) / $cd_err))")
            line="$line | $bin: $2 it $1 ($rel)"
        done
        echo "$line"
    done
done
