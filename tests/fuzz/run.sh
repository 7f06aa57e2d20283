#!/bin/sh
# Runs libFuzzer targets built by `make fuzz`: tests/fuzz/run.sh BUILD SECONDS TARGET...
# Each runs SECONDS from its seeds and regression inputs (read only) and a
# working corpus in BUILD/corpus/TARGET (what it found, kept between runs on
# one machine); a crash, leak, sanitizer report or timeout stops it, leaves
# the input in BUILD/crashes/TARGET/ and fails the run. Prints one line per
# target with the executions libFuzzer reports (for README's "Fuzzing" table).
set -u
build=$1
seconds=$2
shift 2
here=$(dirname "$0")
status=0
failed=""
for t in "$@"; do
    # -max_len per target: a few times the largest seed, enough for every
    # branch of the parser (a bigger body only repeats what a small one has).
    # fuzz_http: its servers' threads allocate while an input runs, which
    # libFuzzer's per-input leak check reads as a leak to look for (a pause
    # of the world each time): leaks are checked at its exit instead.
    extra=""
    case $t in
    fuzz_request) max_len=512 ;;
    fuzz_spec | fuzz_json_scan | fuzz_mmio) max_len=4096 ;;
    fuzz_http) max_len=8192 extra=-detect_leaks=0 ;;
    *) max_len=8192 ;;
    esac
    mkdir -p "$build/corpus/$t" "$build/crashes/$t"
    dirs="$build/corpus/$t"
    for d in "$here/seeds/$t" "$here/regressions/$t"; do
        [ -d "$d" ] && dirs="$dirs $d"
    done
    log="$build/$t.log"
    # shellcheck disable=SC2086 # dirs is a list of paths without spaces
    "$build/$t" -max_total_time="$seconds" -max_len="$max_len" -timeout=20 -rss_limit_mb=2560 \
        -print_final_stats=1 -artifact_prefix="$build/crashes/$t/" $extra $dirs >"$log" 2>&1
    rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    if [ $rc -ne 0 ]; then
        echo "fuzz: $t FAILED (exit $rc, ${execs:-?} executions); the report:"
        grep -v '^#\|^INFO\|^stat::' "$log" | tail -60
        ls "$build/crashes/$t/" | sed "s|^|  input: $build/crashes/$t/|"
        failed="$failed $t"
        status=1
    else
        echo "fuzz: $t ok: ${execs:-?} executions in ${seconds} s"
    fi
done
# CI shows only the end of its output: the cause of each failure again,
# last. The property a target broke, or the sanitizer's error, is at the
# start of its report, with the first frames; the input is the Base64 line.
for t in $failed; do
    echo "fuzz: $t failed; what broke (from $build/$t.log):"
    grep -v '^#\|^INFO\|^stat::\|^MS:\|^0x\|^ *$' "$build/$t.log" |
        grep -m 12 -A 8 "^$t:\|ERROR\|SUMMARY\|runtime error" | head -24
    grep -m 1 '^Base64:' "$build/$t.log"
done
exit $status
