#!/bin/sh
# The entry point of docker/postgres.Dockerfile: on the first start, initdb
# into $PGDATA (the volume) with POSTGRES_USER as the superuser, its password
# from POSTGRES_PASSWORD_FILE, password logins (scram-sha-256) from any
# address and POSTGRES_DB created; then PostgreSQL as PID 1 (exec), listening
# on every interface of the container.
set -eu
: "${PGDATA:?}" "${POSTGRES_USER:?}" "${POSTGRES_DB:?}"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    pwfile=${POSTGRES_PASSWORD_FILE:-}
    if [ -z "$pwfile" ] || [ ! -s "$pwfile" ]; then
        echo "postgres: POSTGRES_PASSWORD_FILE must name a file holding the password" >&2
        exit 1
    fi
    # initdb reads the first line of --pwfile.
    initdb -D "$PGDATA" -U "$POSTGRES_USER" --pwfile="$pwfile" -A scram-sha-256 \
        -E UTF8 --locale=C.UTF-8 >/dev/null
    {
        echo "local all all scram-sha-256"
        echo "host all all 0.0.0.0/0 scram-sha-256"
        echo "host all all ::/0 scram-sha-256"
    } >"$PGDATA/pg_hba.conf"
    # Create the database with no TCP listener yet, so nothing connects to a
    # half-made cluster.
    pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -k /run/postgresql" -w start >/dev/null
    PGPASSWORD=$(head -n 1 "$pwfile") createdb -h /run/postgresql -U "$POSTGRES_USER" \
        "$POSTGRES_DB"
    pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
    echo "postgres: made the cluster in $PGDATA, database $POSTGRES_DB, user $POSTGRES_USER" >&2
fi
exec postgres -D "$PGDATA" -c listen_addresses='*' -k /run/postgresql "$@"
