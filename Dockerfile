# topicd's CPU image. `make image` builds it with podman (scripts/image.sh);
# with a Docker engine:
#   docker build -t topicd .
#   docker run -d --name topicd -p 127.0.0.1:8080:8080 -v topicd-data:/var/lib/topicd \
#     --stop-timeout 40 topicd
# The README's "The container" section lists what a container user sets.
# The compiler, make and the -dev packages scripts/deps.sh checks for
# (libpq-dev for the PostgreSQL store), nothing else. scripts/image.sh tags
# this stage (topicd-build-deps), so that pruning the build's leftovers
# keeps the packages for the next build.
FROM debian:bookworm-slim AS build-deps
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      gcc libc6-dev make pkg-config libcjson-dev libmicrohttpd-dev libopenblas-dev \
      liblapacke-dev libutf8proc-dev libsqlite3-dev libcurl4-openssl-dev libpq-dev libssl-dev zlib1g-dev \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/*

FROM build-deps AS build
# scripts/image.sh prunes this stage's leftover layers by this label.
LABEL org.topicd.stage=build
WORKDIR /src
COPY . .
RUN make -j"$(nproc)" GPU=0 \
 && make install GPU=0 PREFIX=/usr/local DESTDIR=/out \
 && strip /out/usr/local/bin/topicd

FROM debian:bookworm-slim
# The topicd user's fixed IDs: a host folder bind-mounted on /var/lib/topicd
# must be writable by them (chown 10001:10001 DIR).
ARG TOPICD_UID=10001
ARG TOPICD_GID=10001
# The libraries topicd links, and curl for the health check.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libcjson1 libmicrohttpd12 libopenblas0-pthread liblapacke libutf8proc2 libsqlite3-0 \
      libpq5 libssl3 curl \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/log/apt/* /var/log/dpkg.log \
 && groupadd --gid "$TOPICD_GID" topicd \
 && useradd --no-log-init --uid "$TOPICD_UID" --gid topicd --home-dir /var/lib/topicd \
      --create-home --shell /usr/sbin/nologin topicd
COPY --from=build /out/usr/local/ /usr/local/
COPY docker/entrypoint.sh /usr/local/bin/topicd-entrypoint
# Numeric, so that a runtime can check it is not root (runAsNonRoot).
USER $TOPICD_UID:$TOPICD_GID
# Listen on every interface inside the container; the store lives in the volume.
ENV TOPICD_BIND=0.0.0.0 \
    TOPICD_PORT=8080 \
    TOPICD_DATA_DIR=/var/lib/topicd
VOLUME /var/lib/topicd
EXPOSE 8080
# The shell form, so the check follows the container's TOPICD_PORT.
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s \
  CMD curl -fsS -o /dev/null "http://127.0.0.1:${TOPICD_PORT}/healthz" || exit 1
# SIGTERM (docker stop) drains: running jobs get TOPICD_SHUTDOWN_GRACE seconds
# (default 30), then are re-queued. Give `docker stop -t` / `--stop-timeout`
# more than that, or the stop ends in SIGKILL.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/topicd-entrypoint"]
CMD ["serve"]
