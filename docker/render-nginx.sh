#!/bin/sh
# render-nginx.sh: writes topicd's nginx configuration from
# docker/nginx.conf.template (beside this script, or $TOPICD_NGINX_TEMPLATE).
#   render-nginx.sh [-l LISTEN] [-a ACCESS_LOG] [-f FAILS:SECONDS] UPSTREAMS OUT
# UPSTREAMS  the replicas, host:port, separated by spaces or commas
#            ("topicd:8080" in the compose file: nginx resolves a name to all
#            of its addresses at start; "127.0.0.1:9001,127.0.0.1:9002")
# OUT        the file to write (- for standard output); run nginx as
#            `nginx -p DIR -c DIR/nginx.conf` with OUT in DIR
# -l LISTEN      nginx's listen address (default 8080; "127.0.0.1:9000")
# -a ACCESS_LOG  where the JSON access log goes (default /dev/stdout; a path
#                relative to the prefix, or "off")
# -f FAILS:SECONDS  the passive health check (default 1:3): after FAILS
#                failed connections in SECONDS a replica is left out for
#                SECONDS
set -eu
listen=8080
access_log=/dev/stdout
fails=1:3
usage() {
    echo "usage: render-nginx.sh [-l LISTEN] [-a ACCESS_LOG] [-f FAILS:SECONDS] UPSTREAMS OUT" >&2
    exit 2
}
while getopts l:a:f: opt; do
    case "$opt" in
    l) listen=$OPTARG ;;
    a) access_log=$OPTARG ;;
    f) fails=$OPTARG ;;
    *) usage ;;
    esac
done
shift $((OPTIND - 1))
[ $# -eq 2 ] || usage
template=${TOPICD_NGINX_TEMPLATE:-$(dirname "$0")/nginx.conf.template}
[ -r "$template" ] || {
    echo "render-nginx.sh: cannot read the template $template" >&2
    exit 1
}

# One word of nginx's configuration each: no spaces, quotes, semicolons or
# braces can come in through a value.
word() { # word WHAT VALUE PATTERN
    if ! printf '%s\n' "$2" | grep -Eqx "$3"; then
        echo "render-nginx.sh: bad $1: '$2'" >&2
        exit 2
    fi
}
word listen "$listen" '[][A-Za-z0-9.:_-]+'
word "access log" "$access_log" '[A-Za-z0-9./_-]+'
word "-f" "$fails" '[0-9]+:[0-9]+'
max_fails=${fails%%:*}
fail_timeout=${fails#*:}

servers=""
n=0
for u in $(printf '%s\n' "$1" | tr ',' ' '); do
    word upstream "$u" '(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+):[0-9]{1,5}'
    servers="$servers${servers:+
        }server $u max_fails=$max_fails fail_timeout=${fail_timeout}s;"
    n=$((n + 1))
done
[ "$n" -gt 0 ] || {
    echo "render-nginx.sh: no upstreams" >&2
    exit 2
}

render() {
    # awk, not sed: the server lines hold slashes and newlines.
    LISTEN=$listen ACCESS_LOG=$access_log SERVERS=$servers awk '{
        gsub(/@LISTEN@/, ENVIRON["LISTEN"])
        if (ENVIRON["ACCESS_LOG"] == "off")
            gsub(/@ACCESS_LOG@ [a-z]+/, "off")
        gsub(/@ACCESS_LOG@/, ENVIRON["ACCESS_LOG"])
        gsub(/@UPSTREAM_SERVERS@/, ENVIRON["SERVERS"])
        print
    }' "$template"
}
if [ "$2" = - ]; then
    render
else
    render >"$2.tmp"
    mv "$2.tmp" "$2"
fi
