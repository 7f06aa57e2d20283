#!/usr/bin/env bash
# Builds topicd's container images with podman, on a Debian machine that has
# no Docker engine and reaches no image registry, only a Debian mirror.
#   scripts/image.sh           the CPU image (Dockerfile), tagged $IMAGE (topicd)
#   scripts/image.sh cuda      the CUDA image (Dockerfile.cuda) on top of it,
#                              tagged $CUDA_IMAGE (topicd-cuda); needs nvcc
#   scripts/image.sh base      only the debian:bookworm-slim base
#   scripts/image.sh compose   the PostgreSQL and nginx images of
#                              docker/compose.yaml (topicd-postgres,
#                              topicd-nginx) on the same base
#   scripts/image.sh setup     only steps 1 and 2 (the tests call this)
# Run as root (apt-get, debootstrap and podman's system storage). Steps:
#  1. installs podman, runc, debootstrap and skopeo (to copy an image to an
#     archive or a registry) from Debian when missing;
#  2. writes a containers.conf drop-in where this host needs one (below);
#  3. makes debian:bookworm-slim once, when podman has no image of that name:
#     debootstrap --variant=minbase from the mirror this machine's apt sources
#     name, trimmed as the official slim image is (debuerreotype's minimizing
#     config and slimify), imported under the name that podman resolves the
#     Dockerfile's `FROM debian:bookworm-slim` to, so the build finds it;
#  4. podman build --format docker (the OCI format has no HEALTHCHECK), then
#     removes the image the tag named before, so rebuilds do not pile up.
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE=${IMAGE:-topicd}
CUDA_IMAGE=${CUDA_IMAGE:-topicd-cuda}
SUITE=bookworm
BASE_REF=debian:$SUITE-slim
DROPIN=/etc/containers/containers.conf.d/50-topicd.conf

log() { printf 'image: %s\n' "$*" >&2; }
die() {
    log "$*"
    exit 1
}

[ "$(id -u)" -eq 0 ] || die "run as root: apt-get, debootstrap and podman's system storage need it"

install_tools() {
    local t missing=""
    for t in podman runc debootstrap skopeo; do
        command -v "$t" >/dev/null 2>&1 || missing="$missing $t"
    done
    [ -z "$missing" ] && return 0
    log "installing missing Debian packages:$missing"
    apt-get update -qq
    # shellcheck disable=SC2086 # one word per package
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
}

# crun, podman's first choice where installed, refuses to run on a host whose
# cgroup v1 and v2 hierarchies are both mounted (no cgroup.controllers at the
# top): runc runs there. Rootful podman gives containers limits of 1048576
# open files and 4194304 processes, and setting them fails where its own
# hard limits are lower, even for root: `ulimit -Hn` for open files, and for
# processes `ulimit -Hu` or kernel.pid_max, to which podman lowers its own.
configure_podman() {
    local hard pid_max limits="" body=""
    if [ ! -e /sys/fs/cgroup/cgroup.controllers ]; then
        body+=$'[engine]\nruntime = "runc"\n'
    fi
    hard=$(ulimit -Hn)
    if [ "$hard" != unlimited ] && [ "$hard" -lt 1048576 ]; then
        limits+="\"nofile=$hard:$hard\""
    fi
    hard=$(ulimit -Hu)
    pid_max=$(cat /proc/sys/kernel/pid_max)
    if [ "$hard" = unlimited ] || [ "$hard" -gt "$pid_max" ]; then
        hard=$pid_max
    fi
    if [ "$hard" -lt 4194304 ]; then
        limits+="${limits:+, }\"nproc=$hard:$hard\""
    fi
    if [ -n "$limits" ]; then
        body+=$'[containers]\n'"default_ulimits = [$limits]"$'\n'
    fi
    if [ -z "$body" ]; then
        rm -f "$DROPIN"
        return 0
    fi
    body="# Written by topicd's scripts/image.sh for this host; see there why."$'\n'"$body"
    if [ "$(cat "$DROPIN" 2>/dev/null)"$'\n' != "$body" ]; then
        mkdir -p "$(dirname "$DROPIN")"
        printf '%s' "$body" >"$DROPIN"
        log "wrote $DROPIN"
    fi
}

# The fully qualified name podman gives `debian`: the short-name alias of
# registries.conf(.d), else Docker Hub's official images.
base_name() {
    local alias
    alias=$(sed -n 's/^[[:space:]]*"debian"[[:space:]]*=[[:space:]]*"\([^"]*\)".*/\1/p' \
        /etc/containers/registries.conf /etc/containers/registries.conf.d/*.conf 2>/dev/null |
        tail -n 1)
    printf '%s:%s-slim\n' "${alias:-docker.io/library/debian}" "$SUITE"
}

# The mirror this machine's apt sources name for a suite (bookworm,
# bookworm-updates, bookworm-security): read at run time, so no host name is
# committed.
apt_site() {
    # shellcheck disable=SC2016 # $(SITE) is apt's, not the shell's
    apt-get indextargets --format '$(SITE)' "Codename: $1" 'Identifier: Packages' 2>/dev/null |
        head -n 1
}

# What debuerreotype does to make debian:SUITE-slim from a minbase tree:
# minimizing config (no services started by installs, no apt caches, gzipped
# lists, no translations) and slimify (no docs but copyrights, man pages,
# info, locales). Excluded paths are kept out of later installs too.
slim_rootfs() {
    local r=$1 f
    printf '#!/bin/sh\nexit 101\n' >"$r/usr/sbin/policy-rc.d"
    chmod 0755 "$r/usr/sbin/policy-rc.d"
    echo force-unsafe-io >"$r/etc/dpkg/dpkg.cfg.d/docker-apt-speedup"
    echo 'Apt::AutoRemove::SuggestsImportant "false";' \
        >"$r/etc/apt/apt.conf.d/docker-autoremove-suggests"
    local clean='"rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true";'
    cat >"$r/etc/apt/apt.conf.d/docker-clean" <<EOF
DPkg::Post-Invoke { $clean };
APT::Update::Post-Invoke { $clean };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
    echo 'Acquire::GzipIndexes "true";' >"$r/etc/apt/apt.conf.d/docker-gzip-indexes"
    echo 'Acquire::Languages "none";' >"$r/etc/apt/apt.conf.d/docker-no-languages"
    cat >"$r/etc/dpkg/dpkg.cfg.d/docker" <<'EOF'
path-exclude /usr/share/doc/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/lintian/overrides/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/man/*
path-include /usr/share/doc/*/copyright
path-include /usr/share/locale/all_languages
path-include /usr/share/locale/currency/*
path-include /usr/share/locale/l10n/*
path-include /usr/share/locale/languages
path-include /usr/share/locale/locale.alias
EOF
    find "$r/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
    find "$r/usr/share/doc" -mindepth 1 -depth -type d -empty -delete
    for f in groff info linda lintian/overrides man; do
        [ -d "$r/usr/share/$f" ] && find "$r/usr/share/$f" -mindepth 1 -delete
    done
    find "$r/usr/share/locale" -mindepth 1 -maxdepth 1 -not -name all_languages \
        -not -name currency -not -name l10n -not -name languages -not -name locale.alias \
        -exec rm -rf {} +
    # No caches, lists or logs from the bootstrap; the runtime provides
    # /etc/hostname, /etc/hosts and /etc/resolv.conf.
    rm -rf "$r"/var/lib/apt/lists/* "$r"/var/cache/apt/* "$r"/var/cache/ldconfig/aux-cache \
        "$r"/var/log/apt/* "$r"/var/log/*.log "$r"/debootstrap \
        "$r"/etc/hostname "$r"/etc/resolv.conf
    : >"$r/etc/machine-id"
}

# Removes a debootstrap tree, unmounting first what a failed debootstrap may
# have left mounted in it (proc, sys), and never crossing into another file
# system.
remove_rootfs() {
    local m
    awk -v r="$1/" 'index($2, r) == 1 { print $2 }' /proc/mounts | sort -r |
        while read -r m; do umount -l "$m" || true; done
    rm -rf --one-file-system "$1"
}

make_base() {
    local name mirror site suites rootfs
    name=$(base_name)
    if podman image exists "$name"; then
        log "base $name: present, reused"
        return 0
    fi
    mirror=$(apt_site "$SUITE")
    if [ -z "$mirror" ]; then
        apt-get update -qq
        mirror=$(apt_site "$SUITE")
    fi
    [ -n "$mirror" ] || die "no Debian $SUITE mirror in this machine's apt sources"
    rootfs=$(mktemp -d "${TMPDIR:-/tmp}/topicd-base.XXXXXX")
    # shellcheck disable=SC2064 # expand now: the trap outlives this function
    trap "remove_rootfs '$rootfs'" EXIT
    log "base $name: debootstrap --variant=minbase $SUITE from $mirror"
    debootstrap --variant=minbase "$SUITE" "$rootfs" "$mirror" >"$rootfs.log" 2>&1 ||
        die "debootstrap failed; its log: $rootfs.log"
    rm -f "$rootfs.log"
    # The image's own apt sources: the suites the official image names, from
    # the mirrors this machine uses for them.
    rm -f "$rootfs/etc/apt/sources.list"
    {
        for suites in "$SUITE $SUITE-updates" "$SUITE-security"; do
            site=$(apt_site "${suites%% *}")
            [ -n "$site" ] || continue
            printf 'Types: deb\nURIs: %s\nSuites: %s\nComponents: main\n' "$site" "$suites"
            printf 'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n'
        done
    } >"$rootfs/etc/apt/sources.list.d/debian.sources"
    slim_rootfs "$rootfs"
    tar --numeric-owner --xattrs -C "$rootfs" \
        --exclude='./dev/*' --exclude='./proc/*' --exclude='./sys/*' -c . |
        podman import --quiet --change 'CMD ["bash"]' \
            --change "LABEL org.topicd.base=debootstrap" - "$name" >/dev/null
    remove_rootfs "$rootfs"
    trap - EXIT
    [ "$(podman image inspect --format '{{.Id}}' "$BASE_REF")" = \
        "$(podman image inspect --format '{{.Id}}' "$name")" ] ||
        die "podman does not resolve $BASE_REF to the imported $name"
    log "base $name: $(podman image inspect --format '{{.Size}}' "$name") bytes"
}

# podman build on the host's network (apt-get in the build reaches the mirror
# as this machine does, with no bridge or NAT), then the image the tag named
# before goes (unless a
# container uses it), and so do the build stage's layers (the Dockerfile's
# org.topicd.stage label) down to the tagged build-deps stage, whose
# packages the next build reuses.
build() {
    local tag=$1 old new
    shift
    old=$(podman image inspect --format '{{.Id}}' "$tag" 2>/dev/null || true)
    log "podman build -t $tag $*"
    podman build --format docker --network host -t "$tag" "$@"
    new=$(podman image inspect --format '{{.Id}}' "$tag")
    if [ -n "$old" ] && [ "$old" != "$new" ]; then
        podman rmi "$old" >/dev/null 2>&1 || true
    fi
    podman image prune -f --filter label=org.topicd.stage=build >/dev/null
    log "$tag: $(podman image inspect --format '{{.Size}}' "$tag") bytes"
}

# The CUDA image: the CPU image, the plugin built here by nvcc, and exactly
# the libraries ldd resolves for it inside this machine's CUDA toolkit (the
# others, libc and libstdc++, are the base image's). The staged context is
# removed after the build.
build_cuda() {
    local ctx=build/image-cuda plugin=build/libtopicd_cuda.so cuda name path n=0
    make gpu >/dev/null
    [ -f "$plugin" ] || die "no $plugin: the CUDA image needs nvcc (the CUDA toolkit)"
    cuda=$(readlink -f "$(dirname "$(readlink -f "$(command -v nvcc ||
        echo /usr/local/cuda/bin/nvcc)")")/..")
    rm -rf "$ctx"
    mkdir -p "$ctx/cuda"
    cp "$plugin" "$ctx/"
    while read -r name path; do
        case "$(readlink -f "$path")" in
        "$cuda"/*) ;;
        *) continue ;;
        esac
        # A hard link where the toolkit is on the same file system: 1 GB.
        ln -f "$(readlink -f "$path")" "$ctx/cuda/$name" 2>/dev/null ||
            cp -L "$path" "$ctx/cuda/$name"
        n=$((n + 1))
    done < <(ldd "$plugin" | awk '$2 == "=>" && $3 ~ /^\// { print $1, $3 }')
    [ "$n" -gt 0 ] || die "ldd names no CUDA library for $plugin"
    log "CUDA libraries from $cuda: $(cd "$ctx/cuda" && echo *) ($(du -shL "$ctx/cuda" | cut -f1))"
    build "$CUDA_IMAGE" --build-arg TOPICD_IMAGE="localhost/$IMAGE:latest" \
        -f Dockerfile.cuda "$ctx"
    rm -rf "$ctx"
}

build_cpu() {
    podman build --format docker --network host --target build-deps \
        -t "$IMAGE-build-deps" -f Dockerfile . >/dev/null
    build "$IMAGE" -f Dockerfile .
}

install_tools
configure_podman
case "${1:-cpu}" in
setup) ;;
base) make_base ;;
cpu)
    make_base
    build_cpu
    ;;
cuda)
    make_base
    build_cpu
    build_cuda
    ;;
compose)
    make_base
    build topicd-postgres -f docker/postgres.Dockerfile docker
    build topicd-nginx -f docker/nginx.Dockerfile docker
    ;;
*) die "usage: scripts/image.sh [cpu|cuda|compose|base|setup]" ;;
esac
