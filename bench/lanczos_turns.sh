#!/bin/sh
# Lanczos k = 10 against scipy's svds, in turns: bench/lanczos_turns.sh MTX [ROUNDS]
# Each round runs topicd fit on 2 threads, then on 1 (its init + fit
# timings), then svds(X, k=10, random_state=0) in its own Python process
# (the call alone), on the Matrix Market file MTX; prints one line each.
# bench/NOTES.md, "Lanczos k = 10 against svds on a quiet machine", says
# how MTX was made. PYTHON names the Python (scripts/bench-python.sh's by
# default), TOPICD the binary (build/topicd).
set -eu
mtx=$1
rounds=${2:-6}
here=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-$("$here/scripts/bench-python.sh")}
topicd=${TOPICD:-$here/build/topicd}
spec='{"model":{"method":"truncated_svd","n_topics":10,"algorithm":"lanczos"},"seed":0}'
echo "start $(date -u +%H:%M:%S), load $(cut -d' ' -f1-3 /proc/loadavg)"
i=0
while [ "$i" -lt "$rounds" ]; do
    i=$((i + 1))
    for t in 2 1; do
        "$topicd" fit --threads "$t" --quiet --spec "$spec" --matrix-market-in "$mtx" |
            "$python" -c "import json, sys; t = json.load(sys.stdin)['timings']
print('round $i topicd, $t thread(s): %.4f s' % (t.get('init', 0) + t['fit']))"
    done
    "$python" -c "
import sys, time
import scipy.io
from scipy.sparse.linalg import svds
X = scipy.io.mmread(sys.argv[1]).tocsr()
t = time.perf_counter()
svds(X, k=10, random_state=0)
print('round $i svds: %.4f s' % (time.perf_counter() - t))" "$mtx"
done
echo "end $(date -u +%H:%M:%S), load $(cut -d' ' -f1-3 /proc/loadavg)"
