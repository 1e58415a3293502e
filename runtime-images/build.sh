#!/usr/bin/env bash
# Builds the FrameOS runtime images from Debian packages only (no registry is needed):
#
#   frameos/runtime-node:1     minbase + Debian's nodejs  + /opt/frameos/runner.js, import.cjs
#                              and runner-heap-<MiB>.blob, V8 startup snapshots of the runner
#   frameos/runtime-python:1   minbase + Debian's python3 + /opt/frameos/runner.py
#
# Usage: runtime-images/build.sh [--force] [--refresh-base] [node|python ...]
#   --force         rebuild the image(s) even if they exist and are up to date
#   --refresh-base  also re-run debootstrap for the shared base root filesystem
#   node|python     build only these (default: both)
#
# Idempotent: an image is skipped when it exists and its label
# org.frameos.recipe-sha256 matches this script + its runner (so editing a runner makes
# the next run rebuild it). Installs debootstrap / docker.io when missing and starts
# dockerd when the Docker socket does not answer. Must run as root (debootstrap, chroot).
#
# Environment overrides:
#   FRAMEOS_ROOTFS_CACHE            base rootfs cache   (default /var/cache/frameos-rootfs)
#   FRAMEOS_DEBIAN_SUITE            Debian suite        (default: the host's VERSION_CODENAME)
#   FRAMEOS_DEBIAN_MIRROR           archive mirror      (default: the host's apt sources)
#   FRAMEOS_DEBIAN_SECURITY_MIRROR  security mirror     (default: the host's apt sources)
#   FRAMEOS_DOCKER_HOST             Docker daemon to use (default: the local socket)
set -euo pipefail

NODE_IMAGE=frameos/runtime-node:1
# V8 heap limits (MiB) the node image carries a runner snapshot for: the execution node gives
# Node three quarters of the memory limit, so these are the memory limits 128, 256 (the
# manifest's default), 512, 1024 and 2048 MiB. A snapshot only loads under the V8 flags it was
# built with; other limits start from runner.js (ADR 0034).
NODE_SNAPSHOT_HEAPS=(96 192 384 768 1536)
PYTHON_IMAGE=frameos/runtime-python:1
AGENT_UID=10001
AGENT_GID=10001

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=${FRAMEOS_ROOTFS_CACHE:-/var/cache/frameos-rootfs}

log() { printf '[build.sh] %s\n' "$*" >&2; }
die() { printf '[build.sh] error: %s\n' "$*" >&2; exit 1; }

FORCE=0
REFRESH_BASE=0
WANT=()
for arg in "$@"; do
  case "$arg" in
    --force) FORCE=1 ;;
    --refresh-base) REFRESH_BASE=1 ;;
    node|python) WANT+=("$arg") ;;
    -h|--help) sed -n '2,/^set -/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument: $arg (see --help)" ;;
  esac
done
[ ${#WANT[@]} -gt 0 ] || WANT=(node python)

[ "$(id -u)" -eq 0 ] || die "must run as root (debootstrap and chroot need it); try: sudo $0 $*"

export DEBIAN_FRONTEND=noninteractive
if [ -n "${FRAMEOS_DOCKER_HOST:-}" ]; then export DOCKER_HOST=$FRAMEOS_DOCKER_HOST; fi

# ---------------------------------------------------------------------------------------
# Tools and the Docker daemon
# ---------------------------------------------------------------------------------------
APT_UPDATED=0
apt_install() {
  command -v apt-get >/dev/null || die "apt-get not found: install $* by hand (Debian expected)"
  if [ "$APT_UPDATED" -eq 0 ]; then apt-get update -q >&2; APT_UPDATED=1; fi
  apt-get install -y -q "$@" >&2
}

docker_answers() { docker info >/dev/null 2>&1; }

ensure_docker() {
  command -v docker >/dev/null || { log "installing docker.io"; apt_install docker.io; }
  docker_answers && return 0
  if [ -n "${DOCKER_HOST:-}" ] && [ "${DOCKER_HOST}" != "unix:///var/run/docker.sock" ]; then
    die "the Docker daemon at DOCKER_HOST=$DOCKER_HOST does not answer"
  fi
  command -v dockerd >/dev/null || { log "installing docker.io"; apt_install docker.io; }
  log "starting dockerd"
  if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
    systemctl start docker >&2 || true
  fi
  if ! docker_answers; then
    setsid nohup dockerd >/var/log/dockerd.log 2>&1 </dev/null &
  fi
  for _ in $(seq 1 60); do
    docker_answers && return 0
    sleep 1
  done
  die "dockerd did not answer within 60 s (see /var/log/dockerd.log)"
}

ensure_debootstrap() {
  command -v debootstrap >/dev/null && return 0
  log "installing debootstrap"
  apt_install debootstrap
}

# ---------------------------------------------------------------------------------------
# Debian suite and mirrors: the host's own (read from its apt sources)
# ---------------------------------------------------------------------------------------
detect_suite() {
  if [ -n "${FRAMEOS_DEBIAN_SUITE:-}" ]; then echo "$FRAMEOS_DEBIAN_SUITE"; return; fi
  local id="" codename=""
  if [ -r /etc/os-release ]; then
    id=$(. /etc/os-release && echo "${ID:-}")
    codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
  fi
  if [ "$id" = debian ] && [ -n "$codename" ]; then echo "$codename"; else echo bookworm; fi
}

# prints the first URI of an enabled `deb` source carrying exactly suite $1
mirror_for_suite() {
  local suite=$1 f
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -r "$f" ] || continue
    awk -v want="$suite" 'BEGIN { RS = "" }
      {
        types = ""; uris = ""; suites = ""; enabled = "yes"
        n = split($0, lines, "\n")
        for (i = 1; i <= n; i++) {
          l = lines[i]
          if (l ~ /^[ \t]*#/) continue
          if (l ~ /^Types:/)   { sub(/^Types:[ \t]*/, "", l);   types = l }
          if (l ~ /^URIs:/)    { sub(/^URIs:[ \t]*/, "", l);    uris = l }
          if (l ~ /^Suites:/)  { sub(/^Suites:[ \t]*/, "", l);  suites = l }
          if (l ~ /^Enabled:/) { sub(/^Enabled:[ \t]*/, "", l); enabled = l }
        }
        if (enabled == "no" || (" " types " ") !~ / deb /) next
        m = split(suites, s, /[ \t]+/)
        for (j = 1; j <= m; j++) if (s[j] == want) { split(uris, u, /[ \t]+/); print u[1]; exit }
      }' "$f"
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -r "$f" ] || continue
    sed -e 's/\[[^]]*\]//' "$f" | awk -v want="$suite" '$1 == "deb" && $3 == want { print $2; exit }'
  done
}

SUITE=$(detect_suite)
MIRROR=${FRAMEOS_DEBIAN_MIRROR:-$(mirror_for_suite "$SUITE" | head -n1)}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
SECURITY_MIRROR=${FRAMEOS_DEBIAN_SECURITY_MIRROR:-$(mirror_for_suite "$SUITE-security" | head -n1)}
SECURITY_MIRROR=${SECURITY_MIRROR:-http://deb.debian.org/debian-security}

# ---------------------------------------------------------------------------------------
# Recipe hashes (an image is rebuilt when its recipe changes)
# ---------------------------------------------------------------------------------------
recipe_sha() { # $1 = runtime
  local runner
  case "$1" in
    node) set -- "$HERE/node/runner.js" "$HERE/node/import.cjs" ;;
    python) set -- "$HERE/python/runner.py" ;;
  esac
  cat "${BASH_SOURCE[0]}" "$@" | sha256sum | cut -c1-64
}

image_is_current() { # $1 = image, $2 = wanted recipe sha
  local have
  have=$(docker image inspect -f '{{ index .Config.Labels "org.frameos.recipe-sha256" }}' "$1" 2>/dev/null) || return 1
  [ "$have" = "$2" ]
}

# ---------------------------------------------------------------------------------------
# Shared base root filesystem (debootstrap once, copied for each image)
# ---------------------------------------------------------------------------------------
BASE=$CACHE/$SUITE-minbase

in_root() { # $1 = rootfs, rest = command
  local root=$1; shift
  chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
    DEBIAN_FRONTEND=noninteractive "$@"
}

build_base() {
  if [ -f "$BASE/.frameos-base-complete" ] && [ "$REFRESH_BASE" -eq 0 ]; then
    log "base rootfs: reusing $BASE"
    return 0
  fi
  ensure_debootstrap
  log "base rootfs: debootstrap --variant=minbase $SUITE from $MIRROR (about a minute)"
  rm -rf "$BASE.tmp"
  mkdir -p "$CACHE"
  debootstrap --variant=minbase "$SUITE" "$BASE.tmp" "$MIRROR" >"$CACHE/debootstrap.log" 2>&1 ||
    die "debootstrap failed (see $CACHE/debootstrap.log)"

  local r=$BASE.tmp
  cat >"$r/etc/apt/sources.list" <<EOF
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
deb $SECURITY_MIRROR $SUITE-security main
EOF
  # never install docs, man pages, translations; no recommends; no services started
  cat >"$r/etc/dpkg/dpkg.cfg.d/01-frameos-nodoc" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
EOF
  cat >"$r/etc/apt/apt.conf.d/01-frameos" <<'EOF'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
Acquire::Languages "none";
EOF
  printf '#!/bin/sh\nexit 101\n' >"$r/usr/sbin/policy-rc.d"
  chmod 0755 "$r/usr/sbin/policy-rc.d"
  strip_rootfs "$r"
  touch "$r/.frameos-base-complete"
  rm -rf "$BASE"
  mv "$r" "$BASE"
}

strip_rootfs() { # $1 = rootfs
  local r=$1
  find "$r/usr/share/doc" -mindepth 1 ! -type d ! -name copyright -delete 2>/dev/null || true
  find "$r/usr/share/doc" -mindepth 1 -type d -empty -delete 2>/dev/null || true
  rm -rf "$r"/usr/share/man/* "$r"/usr/share/info/* "$r"/usr/share/lintian "$r"/usr/share/linda
  find "$r/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} + 2>/dev/null || true
  rm -rf "$r"/var/lib/apt/lists/* "$r"/var/cache/apt/*.bin "$r"/var/cache/apt/archives/*.deb \
    "$r"/var/cache/apt/archives/partial/* "$r"/var/cache/debconf/*-old "$r"/var/lib/dpkg/*-old \
    "$r"/var/log/* "$r"/tmp/* "$r"/var/tmp/* "$r"/root/.cache
}

# ---------------------------------------------------------------------------------------
# One image
# ---------------------------------------------------------------------------------------
build_image() { # $1 = runtime
  local runtime=$1 image packages runner cmd extra_env=() extra_files=()
  case "$runtime" in
    node)
      image=$NODE_IMAGE
      packages=(nodejs ca-certificates)
      runner=$HERE/node/runner.js
      extra_files=("$HERE/node/import.cjs")
      cmd='CMD ["node", "/opt/frameos/runner.js"]'
      extra_env=(--change "LABEL org.frameos.node-snapshot-heaps=\"${NODE_SNAPSHOT_HEAPS[*]}\"")
      ;;
    python)
      image=$PYTHON_IMAGE
      # python3-minimal lacks json and asyncio, which the runner (and most agents) need
      packages=(python3 ca-certificates)
      runner=$HERE/python/runner.py
      cmd='CMD ["python3", "/opt/frameos/runner.py"]'
      extra_env=(--change 'ENV PYTHONDONTWRITEBYTECODE=1' --change 'ENV PYTHONUNBUFFERED=1')
      ;;
  esac

  local sha
  sha=$(recipe_sha "$runtime")
  if [ "$FORCE" -eq 0 ] && image_is_current "$image" "$sha"; then
    log "$image: up to date, skipped (use --force to rebuild)"
    echo "$image"
    return 0
  fi
  if [ "$FORCE" -eq 0 ] && docker image inspect "$image" >/dev/null 2>&1; then
    log "$image: exists but was built from another recipe/runner; rebuilding"
  fi

  build_base
  local started=$SECONDS
  local r=$CACHE/work-$runtime
  rm -rf "$r"
  log "$image: copying the base rootfs"
  cp -a "$BASE" "$r"
  rm -f "$r/.frameos-base-complete"
  cp -L /etc/resolv.conf "$r/etc/resolv.conf" 2>/dev/null || true

  log "$image: apt-get install ${packages[*]}"
  {
    in_root "$r" apt-get update -q &&
      in_root "$r" apt-get -y -q upgrade &&
      in_root "$r" apt-get install -y -q "${packages[@]}" &&
      in_root "$r" apt-get clean
  } >"$CACHE/apt-$runtime.log" 2>&1 || die "apt-get in the $runtime rootfs failed (see $CACHE/apt-$runtime.log)"

  # the unprivileged user the agent runs as
  grep -q "^agent:" "$r/etc/group" ||
    echo "agent:x:$AGENT_GID:" >>"$r/etc/group"
  grep -q "^agent:" "$r/etc/passwd" ||
    echo "agent:x:$AGENT_UID:$AGENT_GID:FrameOS agent:/nonexistent:/usr/sbin/nologin" >>"$r/etc/passwd"
  grep -q "^agent:" "$r/etc/shadow" ||
    echo "agent:*:19000:0:99999:7:::" >>"$r/etc/shadow"

  mkdir -p "$r/agent" "$r/opt/frameos"
  chmod 0755 "$r/agent" "$r/opt/frameos"
  install -m 0644 "$runner" "${extra_files[@]}" "$r/opt/frameos/"
  if [ "$runtime" = node ]; then
    local heap
    for heap in "${NODE_SNAPSHOT_HEAPS[@]}"; do
      # Built by the image's own node: a blob only loads into the binary that wrote it.
      in_root "$r" node "--max-old-space-size=$heap" --snapshot-blob "/opt/frameos/runner-heap-$heap.blob" \
        --build-snapshot /opt/frameos/runner.js >>"$CACHE/apt-$runtime.log" 2>&1 ||
        die "building the runner's snapshot for a $heap MiB heap failed (see $CACHE/apt-$runtime.log)"
      chmod 0644 "$r/opt/frameos/runner-heap-$heap.blob"
    done
  fi

  rm -f "$r/usr/sbin/policy-rc.d"
  strip_rootfs "$r"
  : >"$r/etc/resolv.conf"
  echo localhost >"$r/etc/hostname"

  log "$image: docker import"
  local old_id
  old_id=$(docker image inspect -f '{{.Id}}' "$image" 2>/dev/null || true)
  tar --numeric-owner -C "$r" -c . |
    docker import \
      --change "$cmd" \
      --change "USER $AGENT_UID:$AGENT_GID" \
      --change 'WORKDIR /agent' \
      --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      --change 'ENV LANG=C.UTF-8' \
      --change 'ENV HOME=/tmp' \
      "${extra_env[@]}" \
      --change "LABEL org.frameos.runtime=$runtime" \
      --change "LABEL org.frameos.debian-suite=$SUITE" \
      --change "LABEL org.frameos.recipe-sha256=$sha" \
      --message "frameos $runtime runtime ($SUITE)" \
      - "$image" >/dev/null
  rm -rf "$r"
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
exec 9>"$CACHE/.lock"
flock 9 # one build at a time (the tests and `frameos dev` may both call this)
ensure_docker
log "Debian $SUITE, mirror $MIRROR, security $SECURITY_MIRROR"
for runtime in "${WANT[@]}"; do
  build_image "$runtime"
done
