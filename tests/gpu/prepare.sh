#!/usr/bin/env bash
# tests/gpu/prepare.sh - run where topicd builds (a development machine),
# before a session on a GPU machine: fills the git-ignored .corpus/ folder
# that travels there (name it in the device tool's `carry`):
#   .corpus/20news/        the 20 Newsgroups files, xz-compressed
#   .corpus/prebuilt.tar.xz  topicd, the CUDA plugin, run_tests, bench_fit
#                          and the shared libraries they need beyond glibc,
#                          for a GPU machine whose image lacks topicd's build
#                          dependencies and cannot install any (no network).
# Then, on the GPU machine: tests/gpu/run.sh
#
# environment: BUILD_DIR (default build/gpu), CORPUS (default
#   ../shared/corpora/20news), JOBS
# shellcheck disable=SC2086,SC2046 # $PKGS is a word list on purpose
set -eu
cd "$(dirname "$0")/../.."
B=${BUILD_DIR:-build/gpu}
CORPUS=${CORPUS:-../shared/corpora/20news}
PKGS="libcjson libmicrohttpd openblas lapacke libutf8proc sqlite3 libcurl"

mkdir -p .corpus/20news "$B"
for f in train.jsonl test.jsonl sklearn_order.json README.md; do
    [ -f "$CORPUS/$f" ] || { echo "prepare.sh: $CORPUS/$f not found" >&2; exit 1; }
    if [ ! -f ".corpus/20news/$f.xz" ] || [ "$CORPUS/$f" -nt ".corpus/20news/$f.xz" ]; then
        xz -T0 -6 -c "$CORPUS/$f" >".corpus/20news/$f.xz"
    fi
done

make -j"${JOBS:-2}" BUILD_DIR="$B" all "$B/tests/run_tests" "$B/oracle" "$B/tests/fake_gpu_plugin.so" \
    "$B/tests/fake_gpu_plugin_abi0.so"
[ -f "$B/libtopicd_cuda.so" ] || { echo "prepare.sh: no CUDA plugin was built (nvcc?)" >&2; exit 1; }
cc -O2 -std=c11 -D_GNU_SOURCE -I. $(pkg-config --cflags $PKGS) -o "$B/bench_fit" \
    tests/gpu/bench_fit.c "$B"/gpu/*.o "$B/libtopicd_api.a" "$B/libtopicd_core.a" \
    $(pkg-config --libs $PKGS) -lpthread -lm -ldl

STAGE=$(mktemp -d)
trap 'rm -rf "$STAGE"' EXIT
mkdir -p "$STAGE/lib" "$STAGE/tests"
cp "$B/topicd" "$B/libtopicd_cuda.so" "$B/bench_fit" "$B/oracle" "$STAGE/"
cp "$B/tests/run_tests" "$B"/tests/fake_gpu_plugin*.so "$STAGE/tests/"
# Every shared library the programs use except glibc's own and the C++
# runtime, which every Linux with an NVIDIA driver has.
ldd "$B/topicd" "$B/tests/run_tests" "$B/bench_fit" "$B/oracle" | awk '/=> \//{print $3}' | sort -u |
    grep -Ev '/(libc|libm|libdl|librt|libpthread|libresolv|libutil|ld-linux[^/]*|libstdc\+\+|libgcc_s)\.so' |
    while read -r lib; do cp -L "$lib" "$STAGE/lib/"; done
tar -cJf .corpus/prebuilt.tar.xz -C "$STAGE" .
du -sh .corpus .corpus/prebuilt.tar.xz .corpus/20news
echo "prepare.sh: ready; carry [\".corpus\"] and run tests/gpu/run.sh on the GPU machine"
