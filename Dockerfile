# topicd: build with `make` on Debian, run `topicd serve`.
#   docker build -t topicd .
#   docker run -p 8080:8080 -v topicd-data:/var/lib/topicd topicd
FROM debian:bookworm-slim AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      build-essential pkg-config libcjson-dev libmicrohttpd-dev libopenblas-dev \
      liblapacke-dev libutf8proc-dev libsqlite3-dev libcurl4-openssl-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN make clean && make -j"$(nproc)" GPU=0 && make install GPU=0 PREFIX=/usr/local DESTDIR=/out

FROM debian:bookworm-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libcjson1 libmicrohttpd12 libopenblas0-pthread liblapacke libutf8proc2 libsqlite3-0 \
      libcurl4 curl ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --home /var/lib/topicd --create-home topicd
COPY --from=build /out/usr/local/ /usr/local/
COPY docker/entrypoint.sh /usr/local/bin/topicd-entrypoint
USER topicd
# Listen on every interface inside the container; the store lives in the volume.
ENV TOPICD_BIND=0.0.0.0 \
    TOPICD_PORT=8080 \
    TOPICD_DATA_DIR=/var/lib/topicd
VOLUME /var/lib/topicd
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s CMD curl -fsS http://127.0.0.1:8080/healthz || exit 1
# SIGTERM (docker stop) drains: running jobs get TOPICD_SHUTDOWN_GRACE seconds
# (default 30), then are re-queued; give docker stop at least that long (-t).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/topicd-entrypoint"]
CMD ["serve"]
