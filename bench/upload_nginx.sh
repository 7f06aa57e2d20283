#!/usr/bin/env bash
# bench/upload_nginx.sh [MB] [RUNS]: a JSON Lines upload of MB (200) MB,
# POSTed to a fresh `topicd serve` directly and through nginx (configured by
# docker/render-nginx.sh), in turns, RUNS (3) times; prints MB/s, topicd's
# peak RSS (VmHWM) and nginx's (its workers'), and what nginx spooled to
# disk (nothing, with proxy_request_buffering off; NGINX_BUFFERING=on
# turns it on to compare).
# Runs on the store $TOPICD_TEST_PG when set (scripts/with-pg.sh), else
# SQLite. The body is made once, /tmp/topicd-upload-nginx-<MB>mb.jsonl.
set -euo pipefail
cd "$(dirname "$0")/.."
MB=${1:-200}
RUNS=${2:-3}
TOPICD=${TOPICD:-build/topicd}
body=/tmp/topicd-upload-nginx-${MB}mb.jsonl
if [ ! -s "$body" ]; then
    # Documents of 40 to 200 words from a 5000-word vocabulary.
    awk -v mb="$MB" 'BEGIN { srand(1); want = mb * 1000000; n = 0
        while (n < want) { w = 40 + int(rand() * 160); s = "{\"text\":\""
            for (i = 0; i < w; i++) s = s (i ? " " : "") "w" int(rand() * rand() * 5000)
            s = s "\"}"; print s; n += length(s) + 1 } }' >"$body"
fi
bytes=$(stat -c %s "$body")
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
hwm() { awk '/^VmHWM/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }
wait_port() {
    for _ in $(seq 500); do
        curl -s -o /dev/null "http://127.0.0.1:$1/healthz" && return 0
        sleep 0.02
    done
    return 1
}
one() { # one direct|nginx
    local dir port nport pid npid t0 t1 code spool nhwm=-
    dir=$(mktemp -d /tmp/topicd-upn.XXXXXX)
    # nginx's workers (nobody, when it starts as root) write under it.
    chmod 755 "$dir"
    port=$(free_port)
    if [ -n "${TOPICD_TEST_PG:-}" ]; then export TOPICD_STORE=$TOPICD_TEST_PG; fi
    "$TOPICD" serve --port "$port" --data-dir "$dir" --log-level warn 2>"$dir/topicd.log" &
    pid=$!
    wait_port "$port"
    local target=$port
    if [ "$1" = nginx ]; then
        nport=$(free_port)
        mkdir -p "$dir/nginx"
        docker/render-nginx.sh -l "127.0.0.1:$nport" -a off "127.0.0.1:$port" "$dir/nginx/nginx.conf"
        sed -i "s/proxy_request_buffering off/proxy_request_buffering ${NGINX_BUFFERING:-off}/" \
            "$dir/nginx/nginx.conf"
        nginx -p "$dir/nginx" -c "$dir/nginx/nginx.conf" -e stderr 2>"$dir/nginx/error.log" &
        npid=$!
        wait_port "$nport"
        target=$nport
    fi
    t0=$(date +%s.%N)
    code=$(curl -s -o "$dir/resp" -w '%{http_code}' -H 'Content-Type: application/x-ndjson' \
        -H 'Expect:' --data-binary "@$body" "http://127.0.0.1:$target/v1/corpora")
    t1=$(date +%s.%N)
    local rss
    rss=$(hwm "$pid")
    if [ "$1" = nginx ]; then
        nhwm=$(for w in $(pgrep -P "$npid"); do hwm "$w"; echo; done | sort -n | tail -n 1)
        # nginx warns of every body it spools to a temporary file.
        spool=$(grep -c 'buffered to a temporary file' "$dir/nginx/error.log" || true)
        kill -QUIT "$npid"
        wait "$npid" || true
    fi
    # Delete the corpus so a PostgreSQL store starts every run empty.
    curl -s -o /dev/null -X DELETE "http://127.0.0.1:$port/v1/corpora/$(python3 -c \
        'import json,sys; print(json.load(open(sys.argv[1]))["id"])' "$dir/resp")"
    kill "$pid"
    wait "$pid" || true
    printf '%-7s %s  %6.1f MB/s  topicd peak RSS %6s MB  nginx worker peak RSS %5s MB  bodies spooled to disk %s\n' \
        "$1" "$code" "$(awk -v b="$bytes" -v a="$t0" -v z="$t1" "BEGIN { print b / (z - a) / 1e6 }")" "$rss" "$nhwm" "${spool:--}"
    rm -rf "$dir"
}
store=SQLite
[ -n "${TOPICD_TEST_PG:-}" ] && store=PostgreSQL
echo "upload of $bytes bytes (JSON Lines), store: $store"
for _ in $(seq "$RUNS"); do
    one direct
    one nginx
done
