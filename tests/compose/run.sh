#!/usr/bin/env bash
# tests/compose/run.sh [--no-build] - `make compose-test`: brings
# docker/compose.yaml up with podman-compose (Debian's, 1.0.3) on the images
# built here (scripts/image.sh and scripts/image.sh compose: no registry),
# then, through nginx only: /readyz, the PostgreSQL store in /v1/info, an
# upload and an NMF job to success; then `down -v`.
# TOPICD_REPLICAS (3) is the replica count. Needs root, as scripts/image.sh does; skips
# otherwise. The last line is "N passed, N failed".
set -u
cd "$(dirname "$0")/../.." || exit 1
T0=$(date +%s)
PROJECT=topicd-ct-$$
export TOPICD_REPLICAS=${TOPICD_REPLICAS:-3}
pass=0
failed=0
say() { printf 'compose [%3ds] %s\n' $(($(date +%s) - T0)) "$*"; }
ok() {
    pass=$((pass + 1))
    say "ok   $*"
}
bad() {
    failed=$((failed + 1))
    say "FAIL $*"
}
finish() {
    echo "$pass passed, $failed failed"
    [ "$failed" -eq 0 ]
    exit
}
if [ "$(id -u)" -ne 0 ]; then
    say "skipped: needs root (podman's system storage, as scripts/image.sh)"
    echo "0 passed, 0 failed, 1 skipped"
    exit 0
fi
if [ "${1:-}" != --no-build ]; then
    if scripts/image.sh >/tmp/$PROJECT-build.log 2>&1 &&
        scripts/image.sh compose >>/tmp/$PROJECT-build.log 2>&1; then
        ok "images topicd, topicd-postgres, topicd-nginx built"
        rm -f "/tmp/$PROJECT-build.log"
    else
        tail -n 20 "/tmp/$PROJECT-build.log"
        bad "building the images (log: /tmp/$PROJECT-build.log)"
        finish
    fi
fi
if ! command -v podman-compose >/dev/null 2>&1; then
    say "installing podman-compose from Debian"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        podman-compose >/dev/null
fi

# The secret: made for the test when there is none (docker/secrets is
# ignored by git), removed again at the end.
made_secret=0
if [ ! -s docker/secrets/pg_password ]; then
    mkdir -p docker/secrets
    head -c 24 /dev/urandom | base64 >docker/secrets/pg_password
    made_secret=1
fi
# compose bind-mounts the file: the topicd (10001) and postgres users read it.
chmod 644 docker/secrets/pg_password
TOPICD_HTTP_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export TOPICD_HTTP_PORT
BASE=http://127.0.0.1:$TOPICD_HTTP_PORT
pc() { (cd docker && podman-compose -p "$PROJECT" "$@"); }
# shellcheck disable=SC2317 # run by the trap
cleanup() {
    pc down -v >/dev/null 2>&1
    [ "$made_secret" = 1 ] && rm -f docker/secrets/pg_password
}
trap cleanup EXIT

if pc up -d >/tmp/$PROJECT-up.log 2>&1; then
    ok "podman-compose up -d ($TOPICD_REPLICAS replica(s), nginx on 127.0.0.1:$TOPICD_HTTP_PORT)"
else
    tail -n 20 "/tmp/$PROJECT-up.log"
    bad "podman-compose up -d"
    finish
fi
rm -f "/tmp/$PROJECT-up.log"
# podman runs no periodic health checks without systemd, and podman-compose
# 1.0.3 does not wait for depends_on's conditions: wait here.
ready=0
for _ in $(seq 120); do
    if curl -fsS -o /dev/null "$BASE/readyz" 2>/dev/null; then
        ready=1
        break
    fi
    sleep 0.5
done
if [ "$ready" = 1 ]; then ok "/readyz through nginx"; else bad "/readyz through nginx within 60 s"; fi
info=$(curl -fsS "$BASE/v1/info" 2>/dev/null)
if printf '%s' "$info" | grep -q '"store":"postgresql"'; then
    ok "the replicas run on the PostgreSQL store"
else
    bad "the PostgreSQL store in /v1/info: ${info:0:200}"
fi
for c in $(podman ps -a --filter "label=io.podman.compose.project=$PROJECT" --format '{{.Names}}'); do
    if podman healthcheck run "$c" >/dev/null 2>&1; then
        ok "$c healthy"
    else
        bad "$c healthy"
        podman logs "$c" 2>&1 | tail -n 5
    fi
done
awk 'BEGIN { srand(1); split("alpha bravo delta gamma", t, " ")
    for (d = 0; d < 400; d++) { s = ""; k = d % 4 + 1
        for (w = 0; w < 30; w++) s = s (w ? " " : "") ((rand() < 0.85) ? t[k] : t[int(rand() * 4) + 1]) int(rand() * 40)
        print s } }' >"/tmp/$PROJECT-corpus.txt"
cid=$(curl -fsS -H 'Content-Type: text/plain' --data-binary "@/tmp/$PROJECT-corpus.txt" \
    "$BASE/v1/corpora" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
rm -f "/tmp/$PROJECT-corpus.txt"
jid=$(curl -fsS -H 'Content-Type: application/json' -H 'Idempotency-Key: compose-1' \
    -d "{\"corpus_id\":\"$cid\",\"model\":{\"method\":\"nmf\",\"n_topics\":4},\"seed\":1}" \
    "$BASE/v1/jobs" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
state=""
for _ in $(seq 120); do
    state=$(curl -fsS "$BASE/v1/jobs/$jid" 2>/dev/null |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["state"])' 2>/dev/null)
    case "$state" in succeeded | failed | cancelled) break ;; esac
    sleep 0.5
done
if [ "$state" = succeeded ]; then
    ok "corpus $cid uploaded and job $jid succeeded through nginx"
else
    bad "a job through nginx: corpus '$cid', job '$jid', state '$state'"
fi
say "done in $(($(date +%s) - T0)) s"
finish
