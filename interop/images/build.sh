#!/usr/bin/env bash
# Build the interop suite's images (localhost/gokogeri/*) into podman's local storage.
#
# Default source is "debootstrap": every image is a Debian rootfs built from the apt mirror this
# machine already uses, then `podman import`ed. That needs no Docker Hub and no RubyGems, which
# are both unreachable on the CI machines; Debian ships exactly the Sidekiq versions we test
# (bookworm 6.4.1, trixie 7.3.2, sid 8.1.7). On a machine that can reach a registry,
# INTEROP_IMAGE_SOURCE=registry builds the same tags from Dockerfile.sidekiq/Dockerfile.redis.
#
# Usage: build.sh [--force] [IMAGE...]     IMAGE is one of: sidekiq:6 sidekiq:7 sidekiq:8
#                                          redis:7.0 redis:8.0 valkey:9 (default: all)
# Images that already exist are skipped (idempotent) unless --force is given.
# Env: INTEROP_IMAGE_SOURCE=debootstrap|registry, DEBIAN_MIRROR (override the apt mirror),
#      INTEROP_BUILD_DIR (scratch space for the rootfs trees, default under ${TMPDIR:-/var/tmp}).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# podman cannot start containers here without runc and lowered ulimits (see containers.conf).
export CONTAINERS_CONF="${CONTAINERS_CONF:-$HERE/containers.conf}"
PREFIX="localhost/gokogeri"
SOURCE="${INTEROP_IMAGE_SOURCE:-debootstrap}"
ALL_IMAGES=(sidekiq:6 sidekiq:7 sidekiq:8 redis:7.0 redis:8.0 valkey:9)

# Sidekiq's Web UI needs a Rack server (puma; webrick as a fallback). On rack 3 (trixie and
# later) rack-session and rackup are separate packages that ruby-sidekiq does not depend on.
# ruby-activejob is Rails' ActiveJob (whatever Rails the suite carries: 6.1 in bookworm), for the
# ActiveJob interop cases (a Rails-less `require "active_job"` app; see ../ruby/activejob.rb).
SIDEKIQ_PKGS_6="ruby-sidekiq,ruby-webrick,puma,ruby-activejob"
SIDEKIQ_PKGS_7="ruby-sidekiq,ruby-webrick,puma,ruby-rack-session,ruby-rackup,ruby-activejob"

log() { printf '[build.sh %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# suite / packages / what the image runs, per image.
suite_of() {
    case "$1" in
        sidekiq:6 | redis:7.0) echo bookworm ;;
        sidekiq:7) echo trixie ;;
        sidekiq:8 | redis:8.0 | valkey:9) echo sid ;;
        *) die "unknown image $1" ;;
    esac
}
packages_of() {
    case "$1" in
        sidekiq:6) echo "$SIDEKIQ_PKGS_6" ;;
        sidekiq:7 | sidekiq:8) echo "$SIDEKIQ_PKGS_7" ;;
        redis:*) echo redis-server ;;
        valkey:*) echo valkey-server ;;
    esac
}
server_of() {
    case "$1" in
        redis:*) echo redis-server ;;
        valkey:*) echo valkey-server ;;
        *) echo "" ;;
    esac
}

# The Debian mirror apt is configured with (deb822 first, then the legacy one-line format).
# The security archive is skipped: it only carries updates for stable.
debian_mirror() {
    if [[ -n "${DEBIAN_MIRROR:-}" ]]; then
        echo "$DEBIAN_MIRROR"
        return
    fi
    local m=""
    if [[ -r /etc/apt/sources.list.d/debian.sources ]]; then
        m="$(awk '/^URIs:/ { for (i = 2; i <= NF; i++) if ($i !~ /security/) { print $i; exit } }' \
            /etc/apt/sources.list.d/debian.sources)"
    fi
    if [[ -z "$m" && -r /etc/apt/sources.list ]]; then
        m="$(awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^(https?|file):/ && $i !~ /security/) { print $i; exit } }' \
            /etc/apt/sources.list)"
    fi
    echo "${m:-http://deb.debian.org/debian}"
}

FORCE=0
WANTED=()
for arg in "$@"; do
    case "$arg" in
        --force) FORCE=1 ;;
        -h | --help) sed -n '2,16p' "${BASH_SOURCE[0]}"; exit 0 ;;
        *) suite_of "$arg" >/dev/null; WANTED+=("$arg") ;;
    esac
done
[[ ${#WANTED[@]} -gt 0 ]] || WANTED=("${ALL_IMAGES[@]}")

command -v podman >/dev/null || die "podman is not installed (run interop/setup.sh)"

# An image records the package list it was built with (label org.gokogeri.interop.packages):
# an image built before a package was added here (or with another list) is rebuilt, not
# skipped, so adding a package needs no --force on machines that already have the images.
packages_label() {
    podman image inspect -f '{{index .Labels "org.gokogeri.interop.packages"}}' "$1" 2>/dev/null || true
}
MISSING=()
for img in "${WANTED[@]}"; do
    if [[ $FORCE -eq 0 ]] && podman image exists "$PREFIX/$img"; then
        built_with="$(packages_label "$PREFIX/$img")"
        # Images from before the label had today's lists without ruby-activejob.
        [[ -n "$built_with" ]] || built_with="$(packages_of "$img" | sed 's/,ruby-activejob//')"
        if [[ "$SOURCE" == debootstrap && "$built_with" != "$(packages_of "$img")" ]]; then
            log "$PREFIX/$img was built with other packages, rebuilding"
            MISSING+=("$img")
        else
            log "$PREFIX/$img exists, skipping"
        fi
    else
        MISSING+=("$img")
    fi
done
if [[ ${#MISSING[@]} -eq 0 ]]; then
    log "all images present"
    exit 0
fi

# ---- registry route (machines that can reach Docker Hub and RubyGems) -----------------------
if [[ "$SOURCE" == registry ]]; then
    for img in "${MISSING[@]}"; do
        case "$img" in
            sidekiq:6) args=(--build-arg SIDEKIQ_VERSION=6.4.1 --build-arg RUBY_VERSION=3.1
                             --build-arg ACTIVEJOB_VERSION=6.1.7.10
                             --build-arg "EXTRA_GEMS=redis:4.8.1 rack:2.2.22") ;;
            sidekiq:7) args=(--build-arg SIDEKIQ_VERSION=7.3.2 --build-arg RUBY_VERSION=3.3
                             --build-arg ACTIVEJOB_VERSION=7.2.2.2) ;;
            sidekiq:8) args=(--build-arg SIDEKIQ_VERSION=8.1.7 --build-arg RUBY_VERSION=3.3
                             --build-arg ACTIVEJOB_VERSION=7.2.4) ;;
            redis:7.0) args=(--build-arg BASE_IMAGE=docker.io/library/redis:7.0) ;;
            redis:8.0) args=(--build-arg BASE_IMAGE=docker.io/library/redis:8.0) ;;
            valkey:9) args=(--build-arg BASE_IMAGE=docker.io/valkey/valkey:9 --build-arg SERVER=valkey-server) ;;
        esac
        file="$HERE/Dockerfile.${img%%:*}"
        [[ "$img" == valkey:* ]] && file="$HERE/Dockerfile.redis"
        log "podman build $PREFIX/$img from $file"
        podman build -f "$file" "${args[@]}" -t "$PREFIX/$img" "$HERE"
    done
    exit 0
fi
[[ "$SOURCE" == debootstrap ]] || die "INTEROP_IMAGE_SOURCE must be debootstrap or registry"

# ---- debootstrap route -------------------------------------------------------------------------
command -v debootstrap >/dev/null || die "debootstrap is not installed (run interop/setup.sh)"
[[ $EUID -eq 0 ]] || die "debootstrap needs root"
MIRROR="$(debian_mirror)"
BUILD="${INTEROP_BUILD_DIR:-$(mktemp -d "${TMPDIR:-/var/tmp}/gokogeri-images.XXXXXX")}"
mkdir -p "$BUILD"
log "mirror $MIRROR, scratch $BUILD"

declare -A PIDS=()
cleanup() {
    local pid mnt
    # An interrupted build must not leave debootstraps running behind us.
    # Each build is its own process group (set -m below): this stops debootstrap's children too.
    for pid in "${PIDS[@]}"; do kill -- "-$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    # debootstrap mounts /proc and /sys inside the target while it installs; unmount anything
    # left there before deleting, or rm would walk into the host's /proc.
    while read -r mnt; do
        if [[ "$mnt" == "$BUILD"/* ]]; then umount -l "$mnt" 2>/dev/null || true; fi
    done < <(findmnt -rn -o TARGET | sort -r)
    rm -rf --one-file-system "$BUILD"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Redis 7.0 comes from the host's own redis-server when the host has 7.0 (Debian 12 does): the
# binary plus the libraries ldd names make a 20 MB image in a second. Any other host falls back
# to a bookworm debootstrap, so the tag always means Redis 7.0.
host_redis_rootfs() {
    local root="$1" bin lib
    bin="$(command -v redis-server || true)"
    [[ -n "$bin" ]] || return 1
    "$bin" --version | grep -q ' v=7\.0\.' || return 1
    mkdir -p "$root/usr/bin" "$root/tmp" "$root/etc"
    cp -L "$bin" "$root/usr/bin/redis-server"
    while read -r lib; do
        cp -L --parents "$lib" "$root"
    done < <(ldd "$bin" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }')
    "$bin" --version | sed -n 's/.* v=\([^ ]*\).*/\1/p' >"$root/.version"
}

# One image, start to finish: rootfs, clean-up, import, smoke test. Runs in the background, one
# per image, so the slow debootstraps (mostly waiting on the network, ~35-75 s each) overlap and
# each image is imported as soon as its own rootfs is ready.
build_one() {
    local img="$1" root="$BUILD/${1/:/-}" name="$PREFIX/$1" server version changes old_id
    server="$(server_of "$img")"
    if [[ "$img" == redis:7.0 ]] && host_redis_rootfs "$root"; then
        log "$img: rootfs from the host's redis-server $(cat "$root/.version")"
    else
        rm -rf --one-file-system "$root"
        log "$img: debootstrap $(suite_of "$img") [$(packages_of "$img")] (log: $root.log)"
        if ! debootstrap --variant=minbase --include="$(packages_of "$img")" "$(suite_of "$img")" \
            "$root" "$MIRROR" >"$root.log" 2>&1; then
            log "$img: debootstrap FAILED, last lines of $root.log:"
            tail -n 20 "$root.log" >&2 || true
            return 1
        fi
        log "$img: debootstrap done"
    fi
    # apt's caches and lists are ~90 MB per image and useless in a container that never runs apt.
    rm -rf "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
    changes=(--change 'ENV LANG=C.UTF-8'
             --change "LABEL org.gokogeri.interop.packages=$(packages_of "$img")")
    if [[ -n "$server" ]]; then
        if [[ -f "$root/.version" ]]; then
            version="$(cat "$root/.version")"
            rm -f "$root/.version"
        else
            version="$(dpkg-query --admindir="$root/var/lib/dpkg" -W -f '${Version}' "$server")"
        fi
        # The server is the entrypoint so the harness can run the image with no command; it
        # listens on the container network (only published on the host's 127.0.0.1) and keeps
        # nothing on disk.
        changes+=(--change "ENTRYPOINT [\"/usr/bin/$server\"]"
                  --change 'CMD ["--bind","0.0.0.0","--protected-mode","no","--save","","--appendonly","no"]'
                  --change 'EXPOSE 6379'
                  --change "LABEL org.gokogeri.interop.package=$server"
                  --change "LABEL org.gokogeri.interop.version=$version")
    else
        version="$(dpkg-query --admindir="$root/var/lib/dpkg" -W -f '${Version}' ruby-sidekiq)"
        # The Rails version the suite carries (noted in ../README.md), for the ActiveJob cases.
        changes+=(--change "LABEL org.gokogeri.interop.activejob=$(dpkg-query \
            --admindir="$root/var/lib/dpkg" -W -f '${Version}' ruby-activejob)")
        # The Ruby job files are mounted here at run time (not baked in): editing them needs no rebuild.
        mkdir -p "$root/opt/interop"
        changes+=(--change 'CMD ["/bin/bash"]'
                  --change "LABEL org.gokogeri.interop.package=ruby-sidekiq"
                  --change "LABEL org.gokogeri.interop.version=$version")
    fi
    log "$img: podman import ($version)"
    old_id="$(podman image inspect -f '{{.Id}}' "$name" 2>/dev/null || true)"
    tar -C "$root" --numeric-owner -c . | podman import -q "${changes[@]}" - "$name" >/dev/null
    rm -rf --one-file-system "$root" "$root.log"
    # A --force rebuild leaves the previous image untagged; drop it unless a container uses it.
    if [[ -n "$old_id" ]]; then podman image rm "$old_id" >/dev/null 2>&1 || true; fi

    # A quick smoke test, so a broken image fails the build rather than every test case.
    if [[ -n "$server" ]]; then
        podman run --rm "$name" --version >&2
    else
        podman run --rm "$name" ruby -e 'require "sidekiq"; require "active_job"; puts "Sidekiq #{Sidekiq::VERSION}, ActiveJob #{ActiveJob.version}, ruby #{RUBY_VERSION}"' >&2
    fi
}

set -m # job control: every background build gets its own process group (see cleanup)
for img in "${MISSING[@]}"; do
    build_one "$img" &
    PIDS[$img]=$!
done
set +m

FAILED=()
for img in "${!PIDS[@]}"; do
    if ! wait "${PIDS[$img]}"; then
        FAILED+=("$img")
    fi
    unset "PIDS[$img]"
done

if [[ ${#FAILED[@]} -gt 0 ]]; then
    # A half-built image must not pass the "exists" check next time.
    for img in "${FAILED[@]}"; do podman image rm -f "$PREFIX/$img" >/dev/null 2>&1 || true; done
    die "failed images: ${FAILED[*]}"
fi
log "built: ${MISSING[*]}"
