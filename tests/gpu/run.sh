#!/usr/bin/env bash
# tests/gpu/run.sh - the one script to run on a GPU machine (an H200):
#   1. build topicd with the CUDA plugin (or, where the build dependencies
#      are missing and nothing can be installed, unpack the binaries that
#      tests/gpu/prepare.sh built and packed into .corpus/prebuilt.tar.xz);
#   2. probe the GPU;
#   3. run the GPU unit tests (tests/unit/test_gpu*.c: every primitive vs the
#      CPU backend, whole fits GPU vs CPU, shared contexts, out of memory);
#   4. benchmark all 18,846 20 Newsgroups documents: randomized SVD k=100,
#      NMF k=20 (cd, mu), GPU vs topicd CPU vs scikit-learn, as a table.
# Meant to finish in under 8 minutes on an H200 machine.
#
# Without a GPU (CI, development machines) it builds, runs the CPU-side GPU
# tests (the GPU ones skip, saying why), says the GPU parts were skipped and
# exits 0.
#
# usage: tests/gpu/run.sh [--bench-cpu [N]]
#   --bench-cpu [N]  without a GPU, still run the benchmark's CPU columns
#                    (topicd CPU vs scikit-learn), on the first N documents
# environment: BUILD_DIR (default build/gpu), TOPICD_CORPUS (default
#   .corpus/20news, else ../shared/corpora/20news), JOBS (make -j), PYTHON
# shellcheck disable=SC2086 # $PKGS is a word list on purpose
set -u
cd "$(dirname "$0")/../.." || exit 1
ROOT=$PWD
B=${BUILD_DIR:-build/gpu}
PYTHON=${PYTHON:-python3}
T0=$(date +%s)
BENCH_CPU=0
BENCH_LIMIT=0
if [ "${1:-}" = "--bench-cpu" ]; then
    BENCH_CPU=1
    BENCH_LIMIT=${2:-0}
fi

say() { printf 'run.sh [%3ds] %s\n' $(($(date +%s) - T0)) "$*"; }
fail() {
    say "FAILED: $*"
    exit 1
}

PKGS="libcjson libmicrohttpd openblas lapacke libutf8proc sqlite3 libcurl"
mkdir -p "$B"

# ---- 1. build ---------------------------------------------------------------
if command -v cc >/dev/null 2>&1 && pkg-config --exists $PKGS 2>/dev/null; then
    say "building in $B (make all, tests, bench_fit)"
    if ! make -j"${JOBS:-$(nproc)}" BUILD_DIR="$B" all "$B/tests/run_tests" \
        "$B/tests/fake_gpu_plugin.so" "$B/tests/fake_gpu_plugin_abi0.so" >"$B/build.log" 2>&1; then
        tail -40 "$B/build.log"
        fail "build (full log: $B/build.log)"
    fi
    # shellcheck disable=SC2046
    cc -O2 -std=c11 -D_GNU_SOURCE -I. $(pkg-config --cflags $PKGS) -o "$B/bench_fit" \
        tests/gpu/bench_fit.c "$B"/gpu/*.o "$B/libtopicd_api.a" "$B/libtopicd_core.a" \
        $(pkg-config --libs $PKGS) -lpthread -lm -ldl >>"$B/build.log" 2>&1 ||
        fail "building bench_fit (see $B/build.log)"
    if [ -f "$B/libtopicd_cuda.so" ]; then
        say "built $B/topicd and the CUDA plugin $B/libtopicd_cuda.so"
    else
        say "built $B/topicd without the CUDA plugin (no nvcc here, or GPU=0)"
    fi
elif [ -f .corpus/prebuilt.tar.xz ]; then
    say "build dependencies missing ($PKGS): using .corpus/prebuilt.tar.xz from tests/gpu/prepare.sh"
    tar -xJf .corpus/prebuilt.tar.xz -C "$B" || fail "unpacking .corpus/prebuilt.tar.xz"
    export LD_LIBRARY_PATH="$ROOT/$B/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    "$B/topicd" --help >/dev/null 2>&1
    [ $? -le 2 ] || fail "the prebuilt topicd does not start here (missing libraries?)"
else
    fail "cannot build here (pkg-config does not find: $PKGS) and there is no .corpus/prebuilt.tar.xz (run tests/gpu/prepare.sh where topicd builds, then carry .corpus)"
fi
PLUGIN="$ROOT/$B/libtopicd_cuda.so"
[ -f "$PLUGIN" ] || PLUGIN=""

# ---- 2. the GPU -------------------------------------------------------------
command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L 2>/dev/null | sed 's/^/    /'
PROBE=$(TOPICD_GPU_PLUGIN="$PLUGIN" "$B/bench_fit" --probe 2>&1)
HAVE_GPU=$?
printf '%s\n' "$PROBE" | sed 's/^/    /'
NV_GPUS=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU ')
if [ "$HAVE_GPU" -eq 0 ]; then
    say "GPU present: running every GPU part"
elif [ "${NV_GPUS:-0}" -gt 0 ]; then
    # The device is there and topicd cannot use it: the run must not pass
    # by skipping every GPU part.
    say "nvidia-smi lists $NV_GPUS GPU(s), but topicd's probe failed"
    if [ -n "$PLUGIN" ]; then
        ldd "$PLUGIN" | grep 'not found' | sed 's/^/    /'
    else
        say "no CUDA plugin was built in $B (is nvcc on PATH?)"
    fi
    fail "a GPU is present but topicd cannot use it"
else
    say "no usable GPU here: GPU tests will skip, the GPU benchmark is skipped"
fi

# ---- 3. the GPU unit tests -------------------------------------------------
say "unit tests matching 'gpu'"
TESTLOG="$B/gpu_tests.log"
TM_BINDIR="$B" OPENBLAS_NUM_THREADS=1 TOPICD_GPU_PLUGIN="$PLUGIN" \
    timeout 240 "$B/tests/run_tests" gpu >"$TESTLOG" 2>&1
TEST_RC=$?
sed 's/^/    /' "$TESTLOG"
[ "$TEST_RC" -eq 0 ] || fail "GPU unit tests (exit $TEST_RC)"
if [ "$HAVE_GPU" -eq 0 ] && grep -q '^skip gpu_' "$TESTLOG"; then
    fail "a GPU is present but GPU tests skipped"
fi

# ---- 4. the benchmark --------------------------------------------------------
CORPUS=${TOPICD_CORPUS:-}
if [ -z "$CORPUS" ]; then
    for c in .corpus/20news ../shared/corpora/20news; do
        if [ -e "$c/train.jsonl" ] || [ -e "$c/train.jsonl.xz" ] || [ -e "$c/train.jsonl.gz" ]; then
            CORPUS=$c
            break
        fi
    done
fi
BENCH_ARGS=()
if [ "$HAVE_GPU" -ne 0 ]; then
    if [ "$BENCH_CPU" -eq 0 ]; then
        say "GPU benchmark skipped: no GPU ($(printf '%s' "$PROBE" | head -1))"
        say "done: GPU parts skipped, CPU-side parts passed"
        exit 0
    fi
    BENCH_ARGS+=(--no-gpu)
fi
[ -n "$CORPUS" ] || fail "no corpus: copy the 20 Newsgroups files into .corpus/20news (tests/gpu/prepare.sh) or set TOPICD_CORPUS"
[ "$BENCH_LIMIT" -gt 0 ] && BENCH_ARGS+=(--limit "$BENCH_LIMIT")
if ! "$PYTHON" -c 'import sklearn, scipy' 2>/dev/null; then
    say "scikit-learn or SciPy missing for $PYTHON: its column is skipped"
    BENCH_ARGS+=(--no-sklearn)
fi
# What is left of the 8 minutes, less a margin, bounds the benchmark.
LEFT=$((450 - ($(date +%s) - T0)))
[ "$LEFT" -gt 60 ] || LEFT=60
say "benchmark on $CORPUS (${LEFT}s at most)"
PYTHONUNBUFFERED=1 TOPICD_GPU_PLUGIN="$PLUGIN" timeout "$LEFT" "$PYTHON" tests/gpu/bench_gpu.py \
    --topicd "$B/topicd" --bench-fit "$B/bench_fit" --corpus "$CORPUS" --work "$B/bench" \
    --budget $((LEFT - 90)) ${BENCH_ARGS[@]+"${BENCH_ARGS[@]}"}
BENCH_RC=$?
[ "$BENCH_RC" -eq 0 ] || fail "benchmark (exit $BENCH_RC)"
say "done"
exit 0
