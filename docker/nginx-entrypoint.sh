#!/bin/sh
# The entry point of docker/nginx.Dockerfile: renders the configuration for
# TOPICD_UPSTREAMS into /var/lib/topicd-nginx, then runs nginx as PID 1 in
# the foreground. The master runs as root, as in the official nginx image, to
# open the access log on the container's standard output; the workers run as
# nobody. SIGHUP reloads (and resolves the replicas' names again).
set -eu
here=$(dirname "$0")
prefix=/var/lib/topicd-nginx
"$here/render-nginx.sh" -l "${TOPICD_NGINX_PORT:-8080}" -a /dev/stdout \
    "${TOPICD_UPSTREAMS:-topicd:8080}" "$prefix/nginx.conf"
exec nginx -p "$prefix" -c "$prefix/nginx.conf" -e stderr
