#!/usr/bin/env bash
# Builds the three FrameOS service images without a registry (no base image is pulled):
#
#   frameos/control-plane:$TAG    /usr/local/bin/frameos-control-plane + /usr/local/bin/frameos
#   frameos/gateway:$TAG          /usr/local/bin/frameos-gateway
#   frameos/execution-node:$TAG   /usr/local/bin/frameos-execution-node
#
# All three sit on one shared base layer, frameos/service-base:<suite>: Debian minbase
# (debootstrap, the host's release, so the binaries find the glibc they were linked against)
# + ca-certificates + the user nonroot (65532:65532), made with `docker import`. Each service
# image adds one layer with its binaries (`docker build` FROM that local image: nothing is
# pulled). With a registry, build services/<service>/Dockerfile instead (see docs/adr/0016).
#
# Usage: images/build.sh [--profile NAME | --release] [--no-cargo] [--force] [--refresh-base]
#                        [control-plane|gateway|execution-node ...]
#   --profile NAME   cargo profile of the binaries (default: release); `dev`/`debug` → debug/
#   --release        the same as --profile release
#   --no-cargo       use the binaries already in $CARGO_TARGET_DIR/<profile>/ (CI, tests);
#                    without it `cargo build --locked` builds them first
#   --force          rebuild the image(s) even if they hold exactly these binaries
#   --refresh-base   also rebuild the base (debootstrap again, latest Debian security updates)
#   control-plane|gateway|execution-node   build only these (default: all three)
#
# Idempotent and fast when cached: an image is skipped when its label
# org.frameos.recipe-sha256 matches this script + the base + its binaries. Prints the image
# names built or kept. Must run as root (debootstrap, chroot); needs Docker.
#
# Environment:
#   TAG                     image tag (default: the workspace version from Cargo.toml)
#   CARGO_TARGET_DIR        where the binaries are (default: <repo>/target)
#   FRAMEOS_ROOTFS_CACHE    rootfs cache, shared with runtime-images/ (default /var/cache/frameos-rootfs)
#   FRAMEOS_DEBIAN_SUITE, FRAMEOS_DEBIAN_MIRROR, FRAMEOS_DEBIAN_SECURITY_MIRROR  as runtime-images/build.sh
#   FRAMEOS_DOCKER_HOST     Docker daemon to use (default: the local socket)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
CACHE=${FRAMEOS_ROOTFS_CACHE:-/var/cache/frameos-rootfs}
SERVICE_UID=65532
SERVICE_GID=65532

log() { printf '[images] %s\n' "$*" >&2; }
die() { printf '[images] error: %s\n' "$*" >&2; exit 1; }

PROFILE=release
CARGO=1
FORCE=0
REFRESH_BASE=0
WANT=()
while [ $# -gt 0 ]; do
  case "$1" in
    --profile) [ $# -ge 2 ] || die "--profile needs a name"; PROFILE=$2; shift ;;
    --profile=*) PROFILE=${1#--profile=} ;;
    --release) PROFILE=release ;;
    --no-cargo) CARGO=0 ;;
    --force) FORCE=1 ;;
    --refresh-base) REFRESH_BASE=1; FORCE=1 ;;
    control-plane|gateway|execution-node) WANT+=("$1") ;;
    -h|--help) sed -n '2,/^set -/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument: $1 (see --help)" ;;
  esac
  shift
done
[ ${#WANT[@]} -gt 0 ] || WANT=(control-plane gateway execution-node)
case "$PROFILE" in dev|debug) PROFILE=dev; PROFILE_DIR=debug ;; *) PROFILE_DIR=$PROFILE ;; esac

VERSION=$(sed -n '/^\[workspace.package\]/,/^\[/ s/^version *= *"\(.*\)"/\1/p' "$ROOT/Cargo.toml")
TAG=${TAG:-$VERSION}
[ -n "$TAG" ] || die "no TAG and no workspace version in Cargo.toml"
BIN_DIR=${CARGO_TARGET_DIR:-$ROOT/target}/$PROFILE_DIR

[ "$(id -u)" -eq 0 ] || die "must run as root (debootstrap and chroot need it); try: sudo $0"
export DEBIAN_FRONTEND=noninteractive
if [ -n "${FRAMEOS_DOCKER_HOST:-}" ]; then export DOCKER_HOST=$FRAMEOS_DOCKER_HOST; fi
docker info >/dev/null 2>&1 || die "Docker does not answer (runtime-images/build.sh starts one)"

# ---------------------------------------------------------------------------------------
# The binaries
# ---------------------------------------------------------------------------------------
binaries_of() { # $1 = service
  case "$1" in
    control-plane) echo frameos-control-plane frameos ;;
    gateway) echo frameos-gateway ;;
    execution-node) echo frameos-execution-node ;;
  esac
}

if [ "$CARGO" -eq 1 ]; then
  log "cargo build --locked --profile $PROFILE (control plane, frameos CLI, gateway, node)"
  (cd "$ROOT" && cargo build --locked --profile "$PROFILE" -p frameos-control-plane -p frameos \
    -p frameos-gateway -p frameos-execution-node --bins >&2)
fi
for service in "${WANT[@]}"; do
  for bin in $(binaries_of "$service"); do
    [ -x "$BIN_DIR/$bin" ] || die "$BIN_DIR/$bin is missing: cargo build --profile $PROFILE --bins (or drop --no-cargo)"
  done
done

# ---------------------------------------------------------------------------------------
# The base: minbase + ca-certificates + nonroot, one `docker import`
# ---------------------------------------------------------------------------------------
detect_suite() {
  if [ -n "${FRAMEOS_DEBIAN_SUITE:-}" ]; then echo "$FRAMEOS_DEBIAN_SUITE"; return; fi
  local id codename
  id=$(. /etc/os-release && echo "${ID:-}")
  codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
  [ "$id" = debian ] && [ -n "$codename" ] || die "not a Debian host: set FRAMEOS_DEBIAN_SUITE to the release whose glibc the binaries need"
  echo "$codename"
}
SUITE=$(detect_suite)
MIRROR=${FRAMEOS_DEBIAN_MIRROR:-http://deb.debian.org/debian}
SECURITY_MIRROR=${FRAMEOS_DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
BASE_IMAGE=frameos/service-base:$SUITE
# The part of this script that makes the base: editing it rebuilds the base (and the images).
BASE_RECIPE=$(sed -n '/^# BASE RECIPE BEGIN/,/^# BASE RECIPE END/p' "${BASH_SOURCE[0]}" | sha256sum | cut -c1-64)

label_of() { # $1 = image, $2 = label
  docker image inspect -f "{{ index .Config.Labels \"$2\" }}" "$1" 2>/dev/null
}

in_root() { # $1 = rootfs, rest = command
  local root=$1; shift
  chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
    DEBIAN_FRONTEND=noninteractive "$@"
}

# BASE RECIPE BEGIN
build_base() {
  local r=$CACHE/work-service-base shared=$CACHE/$SUITE-minbase
  rm -rf "$r"
  if [ -f "$shared/.frameos-base-complete" ] && [ "$REFRESH_BASE" -eq 0 ]; then
    log "base: copying the minbase rootfs of runtime-images/ ($shared)"
    cp -a "$shared" "$r"
    rm -f "$r/.frameos-base-complete"
  else
    command -v debootstrap >/dev/null || { apt-get update -q >&2; apt-get install -y -q debootstrap >&2; }
    log "base: debootstrap --variant=minbase $SUITE from $MIRROR (about a minute)"
    debootstrap --variant=minbase "$SUITE" "$r" "$MIRROR" >"$CACHE/debootstrap-service.log" 2>&1 ||
      die "debootstrap failed (see $CACHE/debootstrap-service.log)"
    printf 'APT::Install-Recommends "false";\nAcquire::Languages "none";\n' >"$r/etc/apt/apt.conf.d/01-frameos"
    printf 'deb %s %s main\ndeb %s %s-updates main\ndeb %s %s-security main\n' \
      "$MIRROR" "$SUITE" "$MIRROR" "$SUITE" "$SECURITY_MIRROR" "$SUITE" >"$r/etc/apt/sources.list"
  fi
  cp -L /etc/resolv.conf "$r/etc/resolv.conf"
  log "base: apt-get upgrade, install ca-certificates"
  { in_root "$r" apt-get update -q && in_root "$r" apt-get -y -q upgrade &&
    in_root "$r" apt-get install -y -q --no-install-recommends ca-certificates &&
    in_root "$r" apt-get clean; } >"$CACHE/apt-service-base.log" 2>&1 ||
    die "apt-get in the base rootfs failed (see $CACHE/apt-service-base.log)"
  # the unprivileged user every service runs as (the uid distroless calls nonroot)
  echo "nonroot:x:$SERVICE_GID:" >>"$r/etc/group"
  echo "nonroot:x:$SERVICE_UID:$SERVICE_GID:FrameOS service:/nonexistent:/usr/sbin/nologin" >>"$r/etc/passwd"
  echo "nonroot:*:19000:0:99999:7:::" >>"$r/etc/shadow"
  # the working directory; the embedded defaults (./.frameos/…) land here when nothing else is set
  install -d -m 0755 -o "$SERVICE_UID" -g "$SERVICE_GID" "$r/var/lib/frameos"
  rm -f "$r/usr/sbin/policy-rc.d"
  find "$r/usr/share/doc" -mindepth 1 ! -type d ! -name copyright -delete 2>/dev/null || true
  rm -rf "$r"/usr/share/man/* "$r"/usr/share/info/* "$r"/var/lib/apt/lists/* "$r"/var/cache/apt/*.bin \
    "$r"/var/cache/apt/archives/*.deb "$r"/var/cache/debconf/*-old "$r"/var/lib/dpkg/*-old \
    "$r"/var/log/* "$r"/tmp/* "$r"/var/tmp/* "$r"/root/.cache
  find "$r/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} + 2>/dev/null || true
  : >"$r/etc/resolv.conf"
  echo localhost >"$r/etc/hostname"
  log "base: docker import $BASE_IMAGE"
  local old_id
  old_id=$(docker image inspect -f '{{.Id}}' "$BASE_IMAGE" 2>/dev/null || true)
  tar --numeric-owner -C "$r" -c . | docker import \
    --change "USER $SERVICE_UID:$SERVICE_GID" \
    --change 'WORKDIR /var/lib/frameos' \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change "LABEL org.frameos.debian-suite=$SUITE" \
    --change "LABEL org.frameos.recipe-sha256=$BASE_RECIPE" \
    --message "frameos service base ($SUITE minbase + ca-certificates)" \
    - "$BASE_IMAGE" >/dev/null
  rm -rf "$r"
  if [ -n "$old_id" ]; then docker image rm "$old_id" >/dev/null 2>&1 || true; fi # in use: leave it
}
# BASE RECIPE END

ensure_base() {
  if [ "$REFRESH_BASE" -eq 0 ] && [ "$(label_of "$BASE_IMAGE" org.frameos.recipe-sha256)" = "$BASE_RECIPE" ]; then
    log "base: $BASE_IMAGE up to date"
    return 0
  fi
  local started=$SECONDS
  build_base
  log "base: built in $((SECONDS - started)) s"
}

# ---------------------------------------------------------------------------------------
# One service image: the base + its binaries
# ---------------------------------------------------------------------------------------
build_image() { # $1 = service
  local service=$1 image=frameos/$1:$TAG entrypoint env=() expose="" bins
  read -r -a bins <<<"$(binaries_of "$service")"
  entrypoint=/usr/local/bin/${bins[0]}
  case "$service" in
    control-plane) env=(FRAMEOS_GRPC_ADDR=0.0.0.0:50051); expose=50051 ;;
    gateway) env=(FRAMEOS_HTTP_ADDR=0.0.0.0:8080); expose=8080 ;;
    # the cache is bind-mounted into agent containers by the host's engine: run the node with
    # a host directory at this same path (k8s: hostPath /var/lib/frameos/cache)
    execution-node) env=(FRAMEOS_PACKAGE_CACHE=/var/lib/frameos/cache) ;;
  esac

  local sha
  sha=$( { echo "$BASE_RECIPE $(docker image inspect -f '{{.Id}}' "$BASE_IMAGE") $service $TAG";
    sed -n '/^build_image()/,/^}/p' "${BASH_SOURCE[0]}"; for b in "${bins[@]}"; do cat "$BIN_DIR/$b"; done; } |
    sha256sum | cut -c1-64)
  if [ "$FORCE" -eq 0 ] && [ "$(label_of "$image" org.frameos.recipe-sha256)" = "$sha" ]; then
    log "$image: up to date (same base and binaries), kept"
    echo "$image"
    return 0
  fi

  local started=$SECONDS ctx
  ctx=$(mktemp -d "${TMPDIR:-/tmp}/frameos-image-XXXXXX")
  for b in "${bins[@]}"; do ln "$BIN_DIR/$b" "$ctx/$b" 2>/dev/null || cp "$BIN_DIR/$b" "$ctx/$b"; done
  {
    echo "FROM $BASE_IMAGE"
    echo "COPY --chown=0:0 ${bins[*]} /usr/local/bin/"
    for e in "${env[@]}"; do echo "ENV $e"; done
    [ -z "$expose" ] || echo "EXPOSE $expose"
    echo "USER $SERVICE_UID:$SERVICE_GID"
    echo "ENTRYPOINT [\"$entrypoint\"]"
    echo "LABEL org.opencontainers.image.title=frameos-$service org.opencontainers.image.version=$VERSION" \
      "org.frameos.cargo-profile=$PROFILE org.frameos.recipe-sha256=$sha"
  } >"$ctx/Dockerfile"
  local old_id
  old_id=$(docker image inspect -f '{{.Id}}' "$image" 2>/dev/null || true)
  if ! docker build -q -t "$image" "$ctx" >"$ctx.log" 2>&1; then
    cat "$ctx.log" >&2
    rm -rf "$ctx" "$ctx.log"
    die "docker build of $image failed"
  fi
  rm -rf "$ctx" "$ctx.log"
  local new_id
  new_id=$(docker image inspect -f '{{.Id}}' "$image")
  if [ -n "$old_id" ] && [ "$old_id" != "$new_id" ]; then
    docker image rm "$old_id" >/dev/null 2>&1 || true # still used by a container: leave it
  fi
  log "$image: built in $((SECONDS - started)) s, $(docker image inspect -f '{{.Size}}' "$image" | awk '{printf "%.1f MB", $1/1e6}')"
  echo "$image"
}

# ---------------------------------------------------------------------------------------
mkdir -p "$CACHE"
exec 9>"$CACHE/.lock-service-images"
flock 9 # one build at a time (scripts/test and the smoke test may both call this)
log "Debian $SUITE, binaries from $BIN_DIR, tag $TAG"
ensure_base
for service in "${WANT[@]}"; do
  build_image "$service"
done
