# tests/lib/topicd.sh: start `topicd serve` for a shell test. Source it, then
#   topicd_start NAME DATA_DIR [SERVE_ARGS...]
# starts $TOPICD (build/topicd) on a free loopback port (--port 0, read back
# from its "listening" log line) with its log in DATA_DIR.log, and sets
# NAME_port and NAME_pid; exits the script, showing the log, when it does not
# start. topicd_stop_all stops every server started so (call it from the
# script's EXIT trap).
topicd_pids=
topicd_start() {
    _name=$1 _data=$2
    shift 2
    "${TOPICD:-build/topicd}" serve --bind 127.0.0.1 --port 0 --data-dir "$_data" --gpu off "$@" \
        >"$_data.log" 2>&1 &
    _pid=$!
    topicd_pids="$topicd_pids $_pid"
    _port= _i=0
    while [ -z "$_port" ] && [ $_i -lt 100 ]; do
        _port=$(sed -n 's/.*"msg":"listening".*"port":\([0-9]*\).*/\1/p' "$_data.log" 2>/dev/null | tail -1)
        [ -n "$_port" ] && break
        kill -0 "$_pid" 2>/dev/null || { cat "$_data.log" >&2; exit 1; }
        sleep 0.1
        _i=$((_i + 1))
    done
    [ -n "$_port" ] || { echo "topicd did not start" >&2; cat "$_data.log" >&2; exit 1; }
    eval "${_name}_port=\$_port ${_name}_pid=\$_pid"
}

topicd_stop_all() {
    for _pid in $topicd_pids; do
        kill "$_pid" 2>/dev/null || true
        wait "$_pid" 2>/dev/null || true
    done
    topicd_pids=
}
