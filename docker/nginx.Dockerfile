# nginx for docker/compose.yaml, on the same Debian base as topicd's image.
# At each start docker/nginx-entrypoint.sh renders docker/nginx.conf.template
# for TOPICD_UPSTREAMS (host:port of the replicas; a name is resolved to all
# its addresses when nginx starts or reloads: after scaling the replicas,
# reload it with SIGHUP, e.g. `docker compose kill -s HUP nginx`).
FROM debian:bookworm-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      nginx-light curl \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/log/apt/* /var/log/dpkg.log \
 && mkdir -p /var/lib/topicd-nginx
COPY nginx.conf.template render-nginx.sh nginx-entrypoint.sh /usr/local/share/topicd-nginx/
ENV TOPICD_UPSTREAMS=topicd:8080 \
    TOPICD_NGINX_PORT=8080
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s \
  CMD curl -fsS -o /dev/null "http://127.0.0.1:${TOPICD_NGINX_PORT}/healthz" || exit 1
# SIGQUIT: finish the requests in progress, then exit.
STOPSIGNAL SIGQUIT
ENTRYPOINT ["/usr/local/share/topicd-nginx/nginx-entrypoint.sh"]
