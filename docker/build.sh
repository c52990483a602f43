#!/usr/bin/env bash
# Builds the fletch:local image: the binaries on the host (FLETCH_PROFILE=release by default,
# or debug), staged into docker/bin/, on a debian:bookworm-slim base. Without a registry the
# base is made here with debootstrap (apt-get install debootstrap) and imported under that tag,
# so the Dockerfile stays the ordinary one.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/fletch-target}"
profile="${FLETCH_PROFILE:-release}"
base="debian:bookworm-slim"

if ! docker image inspect "$base" >/dev/null 2>&1 && ! docker pull -q "$base" >/dev/null 2>&1; then
  rootfs="${FLETCH_ROOTFS:-/var/tmp/fletch-rootfs-bookworm}"
  if [ ! -x "$rootfs/bin/sh" ]; then
    command -v debootstrap >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
    echo "== debootstrap: a minimal Debian 12 for the base image (once per machine)"
    rm -rf "$rootfs.tmp"
    debootstrap --variant=minbase bookworm "$rootfs.tmp" http://deb.debian.org/debian >/dev/null
    rm -rf "$rootfs.tmp/var/cache/apt/archives"/*.deb "$rootfs.tmp/var/lib/apt/lists"/*
    mv "$rootfs.tmp" "$rootfs"
  fi
  echo "== importing $rootfs as $base"
  tar -C "$rootfs" -c . | docker import - "$base" >/dev/null
fi

flag=()
[ "$profile" = release ] && flag=(--release)
cargo build "${flag[@]}" --locked --bin fletchd --bin fletch
mkdir -p docker/bin
cp "$CARGO_TARGET_DIR/$profile/fletchd" "$CARGO_TARGET_DIR/$profile/fletch" docker/bin/
# Neither debug info nor symbols in the image (a debug build's fletchd carries line tables; the
# release build on the host keeps its symbols for profiling): 242 -> about 220 MB.
strip --strip-all docker/bin/fletchd docker/bin/fletch
docker build -q -t fletch:local docker >/dev/null
echo "== built fletch:local ($profile binaries)"
