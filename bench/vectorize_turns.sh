#!/bin/bash
# topicd vectorize with several binaries, in turns: the comparisons of
# bench/NOTES.md, "The whole process again".
#
#   bench/vectorize_turns.sh ROUNDS INPUT BIN...
#
# Each round runs every BIN in turn on INPUT (the raw 20news JSON Lines:
# train.jsonl then test.jsonl), stripping headers, footers and quotes, with
# English stop words, its summary to a pipe. Prints per BIN the sorted wall
# times (ms, date around the run) and CPU times (user + sys, /usr/bin/time,
# 10 ms steps), and with FIELD=tokenize (or read, vocabulary, weighting) that
# field of its timings instead of the CPU. THREADS passes --threads.
set -eu
rounds=$1 input=$2
shift 2
spec='{"preprocess":{"strip":["headers","footers","quotes"]},"vectorizer":{"stop_words":"english"}}'
threads=()
[ -n "${THREADS:-}" ] && threads=(--threads "$THREADS")
declare -A wall other
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
for ((r = 0; r < rounds; r++)); do
    for bin in "$@"; do
        s=$(date +%s%N)
        /usr/bin/time -f "%U %S" -o "$tmp.cpu" "$bin" vectorize --quiet "${threads[@]}" \
            --spec "$spec" "$input" > "$tmp"
        e=$(date +%s%N)
        wall[$bin]+=" $(((e - s) / 1000000))"
        if [ -n "${FIELD:-}" ]; then
            other[$bin]+=" $(python3 -c 'import json, sys
print(int(json.load(open(sys.argv[1]))["timings"][sys.argv[2]] * 1000))' "$tmp" "$FIELD")"
        else
            other[$bin]+=" $(awk '{printf "%d", ($1 + $2) * 1000}' "$tmp.cpu")"
        fi
    done
done
rm -f "$tmp.cpu"
sorted() { echo "$@" | tr ' ' '\n' | sort -n | tr '\n' ' '; }
for bin in "$@"; do
    echo "$bin"
    echo "  wall ms: $(sorted ${wall[$bin]})"
    echo "  ${FIELD:-cpu} ms: $(sorted ${other[$bin]})"
done
