#!/bin/sh
# bench/exports_memory.sh [N_DOCS...]: the server's memory while it streams
# GET /v1/jobs/{id}/document-topics.csv, for jobs of each N_DOCS documents
# (default 10000 200000; k = 10, synthetic 8-word documents). For each: upload,
# fit NMF, restart the server on the same data (so its peak RSS is the
# download's, not the fit's), then download the CSV with curl and print the
# rows, bytes, seconds and the server's VmHWM before and after. The CSV is
# streamed a store chunk (256 documents) at a time, so the peak should not
# grow with N_DOCS. Writes only under a temporary folder.
set -eu
cd "$(dirname "$0")/.."
. tests/lib/topicd.sh
dir=$(mktemp -d "${TMPDIR:-/tmp}/topicd-exports-XXXXXX")
trap 'topicd_stop_all; rm -rf "$dir"' EXIT INT TERM
hwm() { sed -n 's/^VmHWM:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$1/status"; }
[ $# -gt 0 ] || set -- 10000 200000
printf '%8s %9s %11s %7s %12s %11s\n' docs rows bytes seconds hwm_before hwm_after
for n in "$@"; do
    data="$dir/d$n"
    python3 - "$n" >"$dir/c$n.jsonl" <<'EOF'
import random, sys
words = "cat dog pet fur stock bond market yield planet orbit rocket moon pixel render shader mesh".split()
r = random.Random(1)
for d in range(int(sys.argv[1])):
    t = d % 4
    print('{"id":"d%d","text":"%s"}' % (d, " ".join(words[4 * t + r.randrange(4)] for _ in range(8))))
EOF
    topicd_start s "$data" --workers 1 --max-body-bytes 1073741824
    base="http://127.0.0.1:$s_port"
    cid=$(curl -sSf -H 'Content-Type: application/x-ndjson' --data-binary "@$dir/c$n.jsonl" \
        "$base/v1/corpora" | sed 's/.*"id":"\([^"]*\)".*/\1/')
    jid=$(curl -sSf -H 'Content-Type: application/json' "$base/v1/jobs" \
        -d "{\"corpus_id\":\"$cid\",\"model\":{\"method\":\"nmf\",\"n_topics\":10},\"seed\":1}" |
        sed 's/.*"id":"\([^"]*\)".*/\1/')
    until curl -sf "$base/v1/jobs/$jid" | grep -q '"state":"succeeded"'; do sleep 0.5; done
    topicd_stop_all
    topicd_start s "$data" --workers 1
    base="http://127.0.0.1:$s_port"
    before=$(hwm "$s_pid")
    t=$(curl -sf -o "$dir/dt.csv" -w '%{time_total}' "$base/v1/jobs/$jid/document-topics.csv")
    after=$(hwm "$s_pid")
    printf '%8d %9d %11d %7.2f %9d kB %8d kB\n' "$n" $(($(wc -l <"$dir/dt.csv") - 1)) \
        "$(wc -c <"$dir/dt.csv")" "$t" "$before" "$after"
    topicd_stop_all
done
