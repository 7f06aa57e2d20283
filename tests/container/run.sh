#!/usr/bin/env bash
# tests/container/run.sh - the container images, built and driven as a user
# would, with podman (no Docker engine here). .ci/run runs it.
#   1. builds the CPU image (scripts/image.sh; the base is made once, then
#      reused);
#   2. starts it with a named volume, TOPICD_PORT moved off 8080 and published
#      on 127.0.0.1 only, and waits for its HEALTHCHECK to pass (so the check
#      follows TOPICD_PORT); checks it runs as the documented non-root UID;
#   3. uploads a corpus and runs an NMF and an SVD job through that port;
#   4. restarts the container and reads both results again, byte for byte;
#   5. `podman stop` while a job runs: exit 0, within the grace, the job back
#      in the queue, and running again after a start;
#   6. starts it on a bind-mounted host folder owned by the documented UID
#      (and sees a root-owned one refused with "cannot open the store");
#   7. sees it refuse to start on 0.0.0.0 with no API key and no
#      TOPICD_AUTH=off (every other start sets TOPICD_AUTH=off).
# usage: tests/container/run.sh [--no-build] [--cuda]
#   --no-build  test the images already built (scripts/image.sh [cuda])
#   --cuda      also build (scripts/image.sh cuda; needs nvcc) and test the
#               CUDA image: ldd finds every library of the plugin, the plugin
#               loads, and with no GPU it serves CPU jobs and says why in
#               /v1/info
# Needs root, as scripts/image.sh does; skips otherwise. Everything it made
# (containers, volumes, folders) is removed at the end; the images stay.
# The last line is "N passed, N failed".
set -u
cd "$(dirname "$0")/../.." || exit 1
IMAGE=${IMAGE:-topicd}
CUDA_IMAGE=${CUDA_IMAGE:-topicd-cuda}
UID_DOC=10001 # the Dockerfile's TOPICD_UID, documented in the README
PYTHON=${PYTHON:-python3}
T0=$(date +%s)
NAME=topicd-ct-$$
BUILD=1
CUDA=0
for a in "$@"; do
    case "$a" in
    --no-build) BUILD=0 ;;
    --cuda) CUDA=1 ;;
    *)
        echo "usage: tests/container/run.sh [--no-build] [--cuda]" >&2
        exit 2
        ;;
    esac
done
pass=0
failed=0
say() { printf 'container [%3ds] %s\n' $(($(date +%s) - T0)) "$*"; }
ok() {
    pass=$((pass + 1))
    say "ok   $*"
}
bad() {
    failed=$((failed + 1))
    say "FAIL $*"
}
check() { # check DESCRIPTION COMMAND...
    local what=$1
    shift
    if "$@"; then ok "$what"; else bad "$what"; fi
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

WORK=$(mktemp -d "${TMPDIR:-/tmp}/topicd-ct.XXXXXX")
# shellcheck disable=SC2317 # run by the trap
cleanup() {
    local c
    for c in $(podman ps -a --format '{{.Names}}' | grep "^$NAME"); do
        podman rm -f -v -t 0 "$c" >/dev/null 2>&1
    done
    podman volume rm -f "$NAME-data" >/dev/null 2>&1
    rm -rf "$WORK"
}
trap cleanup EXIT

# --- helpers ------------------------------------------------------------------

# podman without systemd runs no periodic health checks (it says so on
# stderr): `podman healthcheck run` runs the image's HEALTHCHECK once.
wait_healthy() { # wait_healthy CONTAINER SECONDS -> 0 once healthy
    local end=$(($(date +%s) + $2))
    while [ "$(date +%s)" -lt "$end" ]; do
        podman healthcheck run "$1" >/dev/null 2>&1 && return 0
        [ "$(podman inspect --format '{{.State.Running}}' "$1" 2>/dev/null)" = true ] || return 1
        sleep 0.1
    done
    return 1
}

BASE_URL=""
http() { # http METHOD PATH [CONTENT-TYPE DATA-FILE] -> body on stdout, status in $WORK/status
    local args=(-sS -o "$WORK/body" -w '%{http_code}' -X "$1" "$BASE_URL$2")
    [ $# -ge 4 ] && args+=(-H "Content-Type: $3" --data-binary "@$4")
    curl "${args[@]}" >"$WORK/status" 2>"$WORK/curl.err" || echo 000 >"$WORK/status"
    cat "$WORK/body" 2>/dev/null
}
status() { cat "$WORK/status"; }
field() { # field NAME < JSON -> the top-level (or "gpu".NAME) value
    "$PYTHON" -c 'import json,sys
d=json.load(sys.stdin); k=sys.argv[1]
for p in k.split("."): d=d[p]
print(json.dumps(d) if isinstance(d,(dict,list,bool)) else d)' "$1"
}

# A corpus of N documents (one a line) from four vocabularies of 40 words,
# 30 words each, mostly from one vocabulary: NMF finds the four.
corpus() { # corpus N SEED > file
    awk -v n="$1" -v seed="$2" 'BEGIN { srand(seed)
        split("alpha bravo delta gamma", t, " ")
        for (d = 0; d < n; d++) { s = ""; k = d % 4 + 1
            for (w = 0; w < 30; w++) {
                v = (rand() < 0.85) ? t[k] : t[int(rand() * 4) + 1]
                s = s (w ? " " : "") v int(rand() * 40) }
            print s } }'
}

run_job() { # run_job SPEC-FILE SECONDS -> job id on stdout once it succeeded
    local id state end=$(($(date +%s) + $2))
    id=$(http POST /v1/jobs application/json "$1" | field id) || return 1
    [ "$(status)" = 202 ] || return 1
    while [ "$(date +%s)" -lt "$end" ]; do
        state=$(http GET "/v1/jobs/$id" | field state)
        case "$state" in
        succeeded)
            echo "$id"
            return 0
            ;;
        failed | cancelled) return 1 ;;
        esac
        sleep 0.2
    done
    return 1
}

# shellcheck disable=SC2317 # called through check
job_succeeds() { run_job "$1" 60 >/dev/null; }

# --- 1. build -----------------------------------------------------------------

if [ "$BUILD" = 1 ]; then
    t=$(date +%s)
    target=cpu
    [ "$CUDA" = 1 ] && target=cuda
    if scripts/image.sh "$target" >"$WORK/build.log" 2>&1; then
        ok "scripts/image.sh $target ($(($(date +%s) - t)) s)"
    else
        tail -n 30 "$WORK/build.log"
        bad "scripts/image.sh $target"
        finish
    fi
else
    scripts/image.sh setup >/dev/null
fi
if ! podman image exists "$IMAGE"; then
    bad "no image $IMAGE (run scripts/image.sh)"
    finish
fi
say "$IMAGE: $(podman image inspect --format '{{.Size}}' "$IMAGE") bytes"

# --- 2. start: named volume, port, health, user -------------------------------

PORT=9090
# The image binds 0.0.0.0: without API keys in its store, topicd refuses to
# start there unless TOPICD_AUTH=off says it runs open (README, "Security").
start_main() {
    podman run -d --name "$NAME" -e TOPICD_AUTH=off -e TOPICD_PORT=$PORT -e TOPICD_SHUTDOWN_GRACE=2 \
        -e TOPICD_WORKERS=1 --stop-timeout 20 -p 127.0.0.1::$PORT \
        -v "$NAME-data:/var/lib/topicd" "$IMAGE" >/dev/null 2>"$WORK/run.err"
}
t=$(date +%s%N)
if ! start_main; then
    cat "$WORK/run.err"
    bad "podman run $IMAGE"
    finish
fi
if wait_healthy "$NAME" 30; then
    ok "healthy after $((($(date +%s%N) - t) / 1000000)) ms (HEALTHCHECK on TOPICD_PORT=$PORT)"
else
    podman logs "$NAME" 2>&1 | tail -n 20
    bad "healthy within 30 s"
    finish
fi
check "health status is healthy" \
    test "$(podman inspect --format '{{.State.Health.Status}}' "$NAME")" = healthy
# Published on the loopback address only.
hostport=$(podman port "$NAME" "$PORT/tcp" | head -n 1)
check "published on 127.0.0.1 only ($hostport)" test "${hostport%:*}" = 127.0.0.1
BASE_URL="http://$hostport"
check "runs as UID $UID_DOC, not root" \
    test "$(podman exec "$NAME" sh -c 'id -u; awk "/^Uid:/ {print \$2}" /proc/1/status' |
        sort -u)" = "$UID_DOC"

# --- 3. a corpus, an NMF and an SVD job through the port ----------------------

corpus 400 1 >"$WORK/small.txt"
cid=$(http POST /v1/corpora text/plain "$WORK/small.txt" | field id)
check "POST /v1/corpora: 201, 400 documents" \
    test "$(status) $(field n_documents <"$WORK/body")" = "201 400"
printf '{"corpus_id":"%s","model":{"method":"nmf","n_topics":4},"seed":1}' "$cid" \
    >"$WORK/nmf.json"
printf '{"corpus_id":"%s","model":{"method":"truncated_svd","n_topics":4},"seed":1}' "$cid" \
    >"$WORK/svd.json"
if nmf=$(run_job "$WORK/nmf.json" 60); then ok "NMF job $nmf succeeded"; else bad "NMF job"; fi
if svd=$(run_job "$WORK/svd.json" 60); then ok "SVD job $svd succeeded"; else bad "SVD job"; fi
http GET "/v1/jobs/$nmf/result" >"$WORK/nmf.result"
check "NMF result: 4 topics" test "$(field topics <"$WORK/nmf.result" |
    "$PYTHON" -c 'import json,sys; print(len(json.load(sys.stdin)))')" = 4
http GET "/v1/jobs/$svd/result" >"$WORK/svd.result"
check "SVD result: 4 singular values" test "$(field singular_values <"$WORK/svd.result" |
    "$PYTHON" -c 'import json,sys; print(len(json.load(sys.stdin)))')" = 4

# --- 4. restart: the volume keeps the results ---------------------------------

if podman restart "$NAME" >/dev/null 2>&1 && wait_healthy "$NAME" 30; then
    ok "restarted, healthy"
else
    bad "restart"
fi
hostport=$(podman port "$NAME" "$PORT/tcp" | head -n 1)
BASE_URL="http://$hostport"
http GET "/v1/jobs/$nmf/result" >"$WORK/nmf.result2"
check "NMF result the same after the restart" cmp -s "$WORK/nmf.result" "$WORK/nmf.result2"
http GET "/v1/jobs/$svd/result" >"$WORK/svd.result2"
check "SVD result the same after the restart" cmp -s "$WORK/svd.result" "$WORK/svd.result2"

# --- 5. podman stop with a running job ----------------------------------------

# NMF with tol 0 and no iteration cap runs until it is stopped.
corpus 4000 2 >"$WORK/big.txt"
bcid=$(http POST /v1/corpora text/plain "$WORK/big.txt" | field id)
printf '{"corpus_id":"%s","model":{"method":"nmf","n_topics":8,"tol":0,"max_iter":1000000000}}' \
    "$bcid" >"$WORK/long.json"
long=$(http POST /v1/jobs application/json "$WORK/long.json" | field id)
for _ in $(seq 100); do
    [ "$(http GET "/v1/jobs/$long" | field state)" = running ] && break
    sleep 0.1
done
check "long job $long running" test "$(http GET "/v1/jobs/$long" | field state)" = running
sleep 0.5
t=$(date +%s%N)
podman stop "$NAME" >/dev/null 2>&1
ms=$((($(date +%s%N) - t) / 1000000))
code=$(podman inspect --format '{{.State.ExitCode}}' "$NAME")
# The grace is 2 s and the stop timeout 20 s: a SIGKILL would take 20 s and
# exit 137.
if [ "$code" = 0 ] && [ "$ms" -lt 10000 ]; then
    ok "podman stop: exit 0 after $ms ms (grace 2 s, stop timeout 20 s)"
else
    bad "podman stop: exit $code after $ms ms"
fi
check "the running job went back to the queue" \
    grep -q "\"job_id\":\"$long\",\"from\":\"running\",\"to\":\"queued\"" <(podman logs "$NAME" 2>&1)
podman start "$NAME" >/dev/null 2>&1 && wait_healthy "$NAME" 30
hostport=$(podman port "$NAME" "$PORT/tcp" | head -n 1)
BASE_URL="http://$hostport"
http GET "/v1/jobs/$long" >"$WORK/long.status"
state=$(field state <"$WORK/long.status")
attempts=$(field attempts <"$WORK/long.status")
check "after a start it runs again (state $state, attempts $attempts)" \
    test "$state" = running -a "$attempts" = 1
http POST "/v1/jobs/$long:cancel" >/dev/null
podman stop "$NAME" >/dev/null 2>&1
podman rm "$NAME" >/dev/null 2>&1

# --- 6. a bind-mounted host folder --------------------------------------------

mkdir -p "$WORK/store" "$WORK/rootowned"
chown "$UID_DOC:$UID_DOC" "$WORK/store"
if podman run -d --name "$NAME-bind" -e TOPICD_AUTH=off -p 127.0.0.1::8080 -v "$WORK/store:/var/lib/topicd" \
    "$IMAGE" >/dev/null 2>"$WORK/run.err" && wait_healthy "$NAME-bind" 30; then
    BASE_URL="http://$(podman port "$NAME-bind" 8080/tcp | head -n 1)"
    http POST /v1/corpora text/plain "$WORK/small.txt" >/dev/null
    check "bind mount owned by $UID_DOC: upload 201" test "$(status)" = 201
    check "the store is in the host folder, owned by $UID_DOC" \
        test -n "$(find "$WORK/store" -type f -user "$UID_DOC" | head -n 1)"
else
    podman logs "$NAME-bind" 2>&1 | tail -n 5
    bad "start on a bind mount owned by $UID_DOC"
fi
podman rm -f -t 5 "$NAME-bind" >/dev/null 2>&1
podman run -d --name "$NAME-root" -e TOPICD_AUTH=off -v "$WORK/rootowned:/var/lib/topicd" "$IMAGE" >/dev/null 2>&1
podman wait "$NAME-root" >/dev/null 2>&1
check "a root-owned bind mount is refused: cannot open the store" \
    grep -q 'cannot open the store' <(podman logs "$NAME-root" 2>&1)
podman rm -f -t 5 "$NAME-root" >/dev/null 2>&1
# The image binds 0.0.0.0: with no API key and no TOPICD_AUTH=off, it stops
# at start and says what to do (README, "Security").
podman run -d --name "$NAME-open" "$IMAGE" >/dev/null 2>&1
# A regression that starts it would leave it running: wait 30 s at most.
timeout 30 podman wait "$NAME-open" >/dev/null 2>&1
check "without a key or TOPICD_AUTH=off it refuses 0.0.0.0 and says so" \
    grep -q 'not a loopback address.*TOPICD_AUTH=off' <(podman logs "$NAME-open" 2>&1)

# --- the CUDA image -----------------------------------------------------------

if [ "$CUDA" = 1 ]; then
    if podman image exists "$CUDA_IMAGE"; then
        say "$CUDA_IMAGE: $(podman image inspect --format '{{.Size}}' "$CUDA_IMAGE") bytes"
        podman run --rm --entrypoint ldd "$CUDA_IMAGE" /usr/local/lib/topicd/libtopicd_cuda.so \
            >"$WORK/ldd" 2>&1
        check "ldd on the plugin in $CUDA_IMAGE: $(grep -c '=>' "$WORK/ldd") libraries, none missing" \
            test -s "$WORK/ldd" -a -z "$(grep 'not found' "$WORK/ldd")"
        grep 'not found' "$WORK/ldd"
        if podman run -d --name "$NAME-cuda" -e TOPICD_AUTH=off -p 127.0.0.1::8080 "$CUDA_IMAGE" >/dev/null \
            2>"$WORK/run.err" && wait_healthy "$NAME-cuda" 30; then
            BASE_URL="http://$(podman port "$NAME-cuda" 8080/tcp | head -n 1)"
            reason=$(http GET /v1/info | field gpu.reason)
            if [ -e /dev/nvidiactl ]; then
                say "a GPU device is here: $(http GET /v1/info | field gpu)"
            else
                check "no GPU: /v1/info says why ($reason)" test -n "$reason"
            fi
            cid=$(http POST /v1/corpora text/plain "$WORK/small.txt" | field id)
            printf '{"corpus_id":"%s","model":{"method":"nmf","n_topics":4},"device":"auto"}' \
                "$cid" >"$WORK/auto.json"
            check "$CUDA_IMAGE serves an \"auto\" job" job_succeeds "$WORK/auto.json"
        else
            podman logs "$NAME-cuda" 2>&1 | tail -n 5
            bad "$CUDA_IMAGE starts healthy"
        fi
        # Without libcuda.so.1 topicd does not load the plugin (it maps
        # 190 MB for nothing); named explicitly it does, and then the
        # reason is the CUDA runtime's own.
        if podman run -d --name "$NAME-plugin" -e TOPICD_AUTH=off -p 127.0.0.1::8080 \
            -e TOPICD_GPU_PLUGIN=/usr/local/lib/topicd/libtopicd_cuda.so "$CUDA_IMAGE" \
            >/dev/null 2>"$WORK/run.err" && wait_healthy "$NAME-plugin" 30; then
            BASE_URL="http://$(podman port "$NAME-plugin" 8080/tcp | head -n 1)"
            reason=$(http GET /v1/info | field gpu.reason)
            if [ -e /dev/nvidiactl ]; then
                say "a GPU device is here: $(http GET /v1/info | field gpu)"
            else
                check "the plugin loads in $CUDA_IMAGE ($reason)" \
                    test -n "$reason" -a -n "${reason##cannot load*}"
            fi
        else
            bad "$CUDA_IMAGE starts healthy with TOPICD_GPU_PLUGIN"
        fi
    else
        bad "no image $CUDA_IMAGE"
    fi
fi

say "done in $(($(date +%s) - T0)) s"
finish
