#!/bin/sh
# Installs the Debian packages topicd builds against, when pkg-config cannot
# find them. Prints what it installs; silent when everything is present.
#   scripts/deps.sh         what `make` needs
#   scripts/deps.sh lint    and the checkers: clang-format (make format,
#                           make check-format) and cppcheck (make lint); the
#                           versions Debian 12 ships are those the tree is
#                           kept clean for (clang-format 14, cppcheck 2.10)
#   scripts/deps.sh test    and PostgreSQL's server, for the store tests
#                           (scripts/with-pg.sh runs a throwaway cluster)
#   scripts/deps.sh browser and Chromium with its driver, for the web page's
#                           tests (tests/browser/run.sh)
#   scripts/deps.sh fuzz    and clang with its libFuzzer runtime (make fuzz;
#                           libclang-rt-dev is only recommended by clang)
set -e
missing=""
check() { pkg-config --exists "$1" 2>/dev/null || missing="$missing $2"; }
command -v pkg-config >/dev/null 2>&1 || missing="$missing pkg-config"
check libcjson libcjson-dev
check libmicrohttpd libmicrohttpd-dev
check openblas libopenblas-dev
check lapacke liblapacke-dev
check libutf8proc libutf8proc-dev
check sqlite3 libsqlite3-dev
check libcurl libcurl4-openssl-dev
check libpq libpq-dev
check libcrypto libssl-dev
check zlib zlib1g-dev  # api/npz.c deflates the models it writes
check expat libexpat1-dev  # the tests read the plots' SVG back with it
command -v cc >/dev/null 2>&1 || missing="$missing build-essential"
if [ "${1:-}" = test ]; then
    ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$missing postgresql"
fi
if [ "${1:-}" = browser ]; then
    command -v chromium >/dev/null 2>&1 || missing="$missing chromium"
    command -v chromedriver >/dev/null 2>&1 || missing="$missing chromium-driver"
fi
if [ "${1:-}" = lint ]; then
    command -v clang-format >/dev/null 2>&1 || missing="$missing clang-format"
    command -v cppcheck >/dev/null 2>&1 || missing="$missing cppcheck"
fi
if [ "${1:-}" = fuzz ]; then
    command -v clang >/dev/null 2>&1 || missing="$missing clang"
    ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-"$(uname -m)".a >/dev/null 2>&1 ||
        missing="$missing libclang-rt-dev"
fi
[ -z "$missing" ] && exit 0
echo "deps: installing missing Debian packages:$missing"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO=sudo
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
