# PostgreSQL for docker/compose.yaml, on the same Debian base as topicd's
# image (no image registry is needed: scripts/image.sh makes the base).
# Its environment is the official postgres image's, in part:
#   POSTGRES_USER (topicd), POSTGRES_DB (topicd), POSTGRES_PASSWORD_FILE
#   (required: the superuser's password, first line of the file)
# docker/postgres-entrypoint.sh makes the cluster in the volume on the first
# start; later starts use it as it is.
FROM debian:bookworm-slim
ARG PG_MAJOR=15
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      postgresql-$PG_MAJOR \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/log/apt/* /var/log/dpkg.log \
 && mkdir -p /var/lib/postgresql/data /run/postgresql \
 && chown postgres:postgres /var/lib/postgresql/data /run/postgresql \
 && chmod 0700 /var/lib/postgresql/data
ENV PATH=/usr/lib/postgresql/$PG_MAJOR/bin:$PATH \
    PGDATA=/var/lib/postgresql/data \
    POSTGRES_USER=topicd \
    POSTGRES_DB=topicd
COPY postgres-entrypoint.sh /usr/local/bin/topicd-postgres-entrypoint
USER postgres
VOLUME /var/lib/postgresql/data
EXPOSE 5432
HEALTHCHECK --interval=5s --timeout=3s --start-period=30s \
  CMD pg_isready -q -h 127.0.0.1 -U "$POSTGRES_USER" -d "$POSTGRES_DB" || exit 1
# SIGINT is PostgreSQL's fast shutdown: SIGTERM (smart) would wait for the
# replicas' connections to close, which they do not.
STOPSIGNAL SIGINT
ENTRYPOINT ["/usr/local/bin/topicd-postgres-entrypoint"]
