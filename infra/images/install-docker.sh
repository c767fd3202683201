#!/usr/bin/env bash
# Docker for `make compose-check` on a Debian bookworm machine without it (root): the engine
# (docker.io) and debootstrap from Debian's packages, the Compose v2 and buildx CLI plugins from
# Debian trixie's packages (one static binary each, so bookworm's libraries are untouched), and a
# running dockerd. Does nothing that is already done.
set -euo pipefail
[ "$(id -u)" = 0 ] || { echo "error: installing Docker needs root" >&2; exit 2; }

missing=()
command -v dockerd >/dev/null || missing+=(docker.io)
command -v debootstrap >/dev/null || missing+=(debootstrap)
command -v nsenter >/dev/null || missing+=(util-linux)
command -v tc >/dev/null || missing+=(iproute2)
if [ ${#missing[@]} -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

plugins=/usr/local/lib/docker/cli-plugins
if ! docker compose version >/dev/null 2>&1 || ! docker buildx version >/dev/null 2>&1; then
    work="$(mktemp -d)"
    trap 'rm -rf "$work"' EXIT
    mkdir -p "$work/lists/partial" "$plugins"
    echo "deb http://deb.debian.org/debian trixie main" > "$work/sources.list"
    apt_trixie=(-o "Dir::Etc::SourceList=$work/sources.list" -o Dir::Etc::SourceParts=/dev/null -o APT::Sandbox::User=root
                -o "Dir::State::Lists=$work/lists")
    apt-get "${apt_trixie[@]}" update -qq
    (cd "$work" && apt-get "${apt_trixie[@]}" download docker-compose docker-buildx >/dev/null)
    for deb in "$work"/*.deb; do dpkg-deb -x "$deb" "$work/tree"; done
    install -m 0755 "$work"/tree/usr/libexec/docker/cli-plugins/docker-{compose,buildx} "$plugins/"
fi

if ! docker info >/dev/null 2>&1; then
    nohup dockerd >/var/log/mpls-dockerd.log 2>&1 &
    for _ in $(seq 60); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
    docker info >/dev/null 2>&1 || { echo "error: dockerd did not start (/var/log/mpls-dockerd.log)" >&2; exit 1; }
fi
docker compose version
