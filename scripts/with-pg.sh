#!/bin/sh
# with-pg.sh CMD [ARG...]: runs CMD with a throwaway PostgreSQL cluster of
# its own (initdb into a temporary folder, a Unix socket there, no TCP port),
# removed when CMD ends. CMD sees:
#   TOPICD_TEST_PG       a libpq conninfo string for an empty database
#   TOPICD_TEST_PG_CTL   a command prefix for pg_ctl on that cluster, so a
#                        test can restart it ("$TOPICD_TEST_PG_CTL restart")
#   TOPICD_TEST_PG_PW_USER, TOPICD_TEST_PG_PW
#                        a second role (a superuser) that must log in with
#                        this password, for the tests of password sources
# Without PostgreSQL's server binaries, CMD runs with TOPICD_TEST_PG_SKIP
# saying why, and the PostgreSQL tests skip with that reason.
# PostgreSQL refuses to run as root: as root the cluster runs as the
# `postgres` user (Debian's package makes it) or `nobody`.
set -eu
bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
if [ -z "$bindir" ] || [ ! -x "$bindir/initdb" ]; then
    export TOPICD_TEST_PG_SKIP="no PostgreSQL server binaries (Debian package postgresql)"
    exec "$@"
fi
dir=$(mktemp -d /tmp/topicd-pg.XXXXXX)
as=""
if [ "$(id -u)" -eq 0 ]; then
    user=postgres
    getent passwd postgres >/dev/null 2>&1 || user=nobody
    chown "$user" "$dir"
    as="runuser -u $user --"
fi
cleanup() {
    $as "$bindir/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$dir"
}
trap cleanup EXIT INT TERM
$as "$bindir/initdb" -D "$dir/data" -U topicd -A trust -E UTF8 --locale=C --no-sync >"$dir/initdb.log" 2>&1 ||
    { cat "$dir/initdb.log" >&2; exit 1; }
# Every role but the one with a password is trusted on the socket.
{ echo "local all topicd_pw scram-sha-256"; cat "$dir/data/pg_hba.conf"; } >"$dir/hba"
cat "$dir/hba" >"$dir/data/pg_hba.conf"
opts="-k $dir -c listen_addresses='' -c fsync=off -c full_page_writes=off -c max_connections=200"
$as "$bindir/pg_ctl" -D "$dir/data" -o "$opts" -l "$dir/server.log" -w start >/dev/null ||
    { cat "$dir/server.log" >&2; exit 1; }
"$bindir/createdb" -h "$dir" -U topicd topicd_test
pw="topicd-test-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
"$bindir/psql" -q -h "$dir" -U topicd -d topicd_test \
    -c "CREATE ROLE topicd_pw LOGIN SUPERUSER PASSWORD '$pw'" >/dev/null
export TOPICD_TEST_PG_PW_USER=topicd_pw TOPICD_TEST_PG_PW="$pw"
export TOPICD_TEST_PG="host=$dir user=topicd dbname=topicd_test"
export TOPICD_TEST_PG_CTL="$as $bindir/pg_ctl -D $dir/data -o \"$opts\" -l $dir/server.log -w"
set +e
"$@"
rc=$?
exit $rc
