#!/usr/bin/env bash
# A private Docker engine for CI and for machines without one running.
#   .ci/docker_engine.sh install      apt-get the engine, debootstrap and the registry
#   .ci/docker_engine.sh start        start dockerd (overlay2, no iptables, no bridge)
#   .ci/docker_engine.sh base-image   a Debian 12 base image (Docker Hub is unreachable here)
#   .ci/docker_engine.sh wheels       serve the pinned wheels found on local disk on 127.0.0.1
#   .ci/docker_engine.sh stop         stop what start/wheels started, by PID
#   .ci/docker_engine.sh env          print the exports the other commands' users need
# State (sockets, pidfiles, logs, data) lives in $SM_VISION_DOCKER_DIR (default /tmp/sm-vision-docker).
set -euo pipefail
dir="${SM_VISION_DOCKER_DIR:-/tmp/sm-vision-docker}"
sock="$dir/docker.sock"
wheel_port="${SM_VISION_WHEEL_PORT:-18765}"
base_image="${SM_VISION_BASE_IMAGE:-sm-vision-base:bookworm}"
repo="$(cd "$(dirname "$0")/.." && pwd)"
export DOCKER_HOST="unix://$sock"

case "${1:-}" in
install)
    need=()
    command -v dockerd >/dev/null || need+=(docker.io)
    command -v debootstrap >/dev/null || need+=(debootstrap)
    command -v docker-registry >/dev/null || need+=(docker-registry)
    # The launcher tests send the printed curl command to the API stand-in.
    command -v curl >/dev/null || need+=(curl)
    if ((${#need[@]})); then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
    fi
    ;;
start)
    mkdir -p "$dir/data" "$dir/exec"
    if [[ -f "$dir/dockerd.pid" ]] && kill -0 "$(cat "$dir/dockerd.pid")" 2>/dev/null; then
        exit 0
    fi
    setsid /usr/sbin/dockerd --storage-driver=overlay2 --iptables=false --bridge=none \
        --data-root "$dir/data" --exec-root "$dir/exec" -H "$DOCKER_HOST" \
        --pidfile "$dir/dockerd.pid" >"$dir/dockerd.log" 2>&1 &
    for _ in $(seq 60); do docker info >/dev/null 2>&1 && exit 0; sleep 1; done
    echo "dockerd did not start; see $dir/dockerd.log" >&2
    tail -20 "$dir/dockerd.log" >&2
    exit 1
    ;;
base-image)
    docker image inspect "$base_image" >/dev/null 2>&1 && exit 0
    rootfs="$dir/rootfs"
    rm -rf "$rootfs"
    debootstrap --variant=minbase bookworm "$rootfs" http://deb.debian.org/debian >"$dir/debootstrap.log" 2>&1 \
        || { tail -20 "$dir/debootstrap.log" >&2; exit 1; }
    # Nothing of this machine goes into the image: its TLS proxy's CA reaches the build's pip
    # steps through BUILD_CA_URL (see `wheels`), never a file of any layer.
    tar -C "$rootfs" -c . | docker import - "$base_image" >/dev/null
    rm -rf "$rootfs"
    echo "created $base_image"
    ;;
wheels)
    python3 "$repo/.ci/local_wheels.py" "$dir/wheels" "$repo"/requirements/*.txt
    # This machine reaches PyPI through a TLS proxy: the build's pip steps fetch its CA from
    # here (BUILD_CA_URL), use it and delete it in the same step.
    cp /etc/ssl/certs/ca-certificates.crt "$dir/wheels/build-ca.crt"
    if ! { [[ -f "$dir/wheels.pid" ]] && kill -0 "$(cat "$dir/wheels.pid")" 2>/dev/null; }; then
        setsid python3 -m http.server "$wheel_port" --bind 127.0.0.1 --directory "$dir/wheels" \
            >"$dir/wheels.log" 2>&1 &
        echo $! >"$dir/wheels.pid"
    fi
    ;;
stop)
    for name in wheels dockerd; do
        pidfile="$dir/$name.pid"
        [[ -f "$pidfile" ]] || continue
        pid="$(cat "$pidfile")"
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
        rm -f "$pidfile"
    done
    # dockerd leaves its default network namespace mounted; unmount so the dir can be removed.
    for ns in "$dir"/exec/netns/*; do
        mountpoint -q "$ns" 2>/dev/null && umount "$ns" 2>/dev/null || true
    done
    ;;
env)
    echo "export DOCKER_HOST=$DOCKER_HOST"
    echo "export BASE_IMAGE=$base_image"
    echo "export PIP_FIND_LINKS=http://127.0.0.1:$wheel_port/"
    echo "export BUILD_CA_URL=http://127.0.0.1:$wheel_port/build-ca.crt"
    ;;
*)
    sed -n '2,10p' "$0"
    exit 64
    ;;
esac
