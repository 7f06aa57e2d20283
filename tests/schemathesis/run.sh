#!/bin/sh
# tests/schemathesis/run.sh [SCHEMATHESIS_ARGS...]: drives `topicd serve` with
# schemathesis (PyPI), which generates requests from the contract the server
# serves (/v1/openapi.yaml) and checks every answer against it: no 5xx, status
# codes, content types, headers and bodies as documented, schema-valid
# requests accepted and invalid ones rejected, and (its stateful phase, by the
# spec's links) corpus -> job -> result -> document topics -> delete.
# The server is its own: a free loopback port, a temporary data dir, stopped
# at the end. Exits non-zero on any failure. schemathesis is pinned and
# installed once into a virtual environment under build/tools/, as
# scripts/check-compose.sh installs check-jsonschema.
#   TOPICD        the binary (build/topicd)
#   ST_EXAMPLES   examples per operation and phase (bounds the run's time)
#   ST_SEED       the generator's seed, so a failure can be replayed
set -eu
cd "$(dirname "$0")/../.."
VERSION=4.32.5
venv=build/tools/schemathesis-$VERSION
if [ ! -x "$venv/bin/schemathesis" ]; then
    echo "schemathesis: installing schemathesis $VERSION from PyPI into $venv"
    rm -rf "$venv"
    "${PYTHON:-python3}" -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check "schemathesis==$VERSION"
fi
topicd=${TOPICD:-build/topicd}
[ -x "$topicd" ] || { echo "schemathesis: no $topicd (make first)" >&2; exit 2; }

. tests/lib/topicd.sh
dir=$(mktemp -d "${TMPDIR:-/tmp}/topicd-schemathesis-XXXXXX")
cleanup() {
    topicd_stop_all
    rm -rf "$dir"
}
trap cleanup EXIT INT TERM

# With a key in the store every /v1 route but the spec needs one, as the
# spec's bearerAuth says: schemathesis sends it, and checks that requests
# without it or with a wrong one get 401. An admin key sees every tenant's
# records, as the stateful phase's links need nothing else.
key=$("$topicd" keys create --data-dir "$dir/data" --tenant schemathesis --admin 2>/dev/null)
case "$key" in tpk_*) ;; *)
    echo "schemathesis: could not create an API key" >&2
    exit 1
    ;;
esac

topicd_start server "$dir/data" --workers 2
port=$server_port

# Run from the temporary folder: schemathesis's and Hypothesis's caches
# (.schemathesis/, .hypothesis/) go there and away with it, so that every
# run starts from the seed alone.
rc=0
root=$(pwd)
(cd "$dir" && PYTHONPATH="$root/tests/schemathesis" "$root/$venv/bin/schemathesis" \
    --config-file "$root/tests/schemathesis/schemathesis.toml" \
    run "http://127.0.0.1:$port/v1/openapi.yaml" \
    --checks all --exclude-checks use_after_free --phases examples,coverage,fuzzing,stateful \
    --max-examples "${ST_EXAMPLES:-200}" --seed "${ST_SEED:-1}" --workers 1 \
    --request-timeout 30 --header "Authorization: Bearer $key" "$@") || rc=$?
# What the server answered, per route and status, from its request log lines:
# shows that the stateful phase reached results and deletions.
echo "schemathesis: topicd's answers (count, route, status):"
sed -n 's/.*"msg":"request".*"route":"\([^"]*\)","status":\([0-9]*\).*/\1 \2/p' "$dir/data.log" |
    sort | uniq -c | sort -k2,2 -k3,3n
if grep -q '"status":5[0-9][0-9]' "$dir/data.log"; then
    echo "schemathesis: topicd answered 5xx" >&2
    rc=1
fi
# A server that died under the run fails it too, whatever schemathesis said.
if ! kill -0 "$server_pid" 2>/dev/null; then
    echo "schemathesis: topicd died during the run" >&2
    tail -20 "$dir/data.log" >&2
    rc=1
fi
exit $rc
