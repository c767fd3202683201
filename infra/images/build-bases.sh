#!/usr/bin/env bash
# Builds the two base images the stack needs from Debian's package registry alone, for machines that
# reach no image registry: mpls-python:3.11 (for infra/Dockerfile) and mpls-redis:7 (the compose
# file's Redis). Needs root, debootstrap and a running dockerd. Re-running reuses what exists.
#   infra/images/build-bases.sh            # then: BASE_IMAGE=mpls-python:3.11 REDIS_IMAGE=mpls-redis:7
set -euo pipefail

suite="${DEBIAN_SUITE:-bookworm}"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
here="$(cd "$(dirname "$0")" && pwd)"
debian="mpls-debian:${suite}"

if ! docker image inspect "$debian" >/dev/null 2>&1; then
    command -v debootstrap >/dev/null || { echo "error: debootstrap not found (apt-get install debootstrap)" >&2; exit 2; }
    tree="$(mktemp -d)"
    trap 'rm -rf "$tree"' EXIT
    echo "debootstrap ${suite} (minbase) from ${mirror}"
    debootstrap --variant=minbase "$suite" "$tree" "$mirror" >/dev/null
    rm -rf "$tree"/var/cache/apt/archives/*.deb "$tree"/var/lib/apt/lists/*
    tar -C "$tree" -c . | docker import --change 'CMD ["bash"]' - "$debian" >/dev/null
fi

docker build --quiet --build-arg "DEBIAN_IMAGE=${debian}" -t mpls-python:3.11 -f "$here/python.Dockerfile" "$here" >/dev/null
docker build --quiet --build-arg "DEBIAN_IMAGE=${debian}" -t mpls-redis:7 -f "$here/redis.Dockerfile" "$here" >/dev/null
docker image ls --format '{{.Repository}}:{{.Tag}}\t{{.Size}}' | grep -E "^(mpls-debian:${suite}|mpls-python:3.11|mpls-redis:7)\b"
