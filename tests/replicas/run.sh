#!/usr/bin/env bash
# tests/replicas/run.sh [N] - the shipped topology on loopback: a throwaway
# PostgreSQL (scripts/with-pg.sh), N `topicd serve` replicas on it (N from
# the argument, else $N, else 3) and nginx from Debian in front, configured
# from docker/nginx.conf.template by docker/render-nginx.sh, as the compose
# file is; tests/replicas/replicas.py says what it checks. Extra arguments
# after N go to replicas.py (--help lists them).
# Needs build/topicd (make) and python3; installs nginx from Debian when
# missing. N = 1 runs everything but the cross-replica checks.
# The last line is "N passed, N failed".
set -euo pipefail
cd "$(dirname "$0")/../.."
n=${1:-${N:-3}}
[ $# -gt 0 ] && shift
case "$n" in
'' | *[!0-9]* | 0)
    echo "usage: tests/replicas/run.sh [N] [replicas.py options]" >&2
    exit 2
    ;;
esac
if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then
    echo "replicas: installing nginx from Debian"
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
        nginx-light >/dev/null
fi
[ -x build/topicd ] || make -s build/topicd
exec scripts/with-pg.sh "${PYTHON:-python3}" tests/replicas/replicas.py --replicas "$n" "$@"
