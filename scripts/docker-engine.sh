#!/usr/bin/env bash
# Make sure a Docker engine answers, installing and starting one when none does.
#
# The engine is started without a bridge network and without touching iptables: every
# container of this project runs with --network host, so no traffic ever leaves loopback
# and no private address range is used. On a machine whose engine already runs (a
# developer laptop, a CI runner with Docker) this script does nothing.
set -euo pipefail

DOCKERD_LOG=${DOCKERD_LOG:-/tmp/liveness-gateway-dockerd.log}
WAIT_S=${DOCKER_WAIT_S:-60}

if docker info >/dev/null 2>&1; then
  exit 0
fi

if ! command -v dockerd >/dev/null 2>&1; then
  if [ "$(id -u)" != 0 ]; then
    echo "docker-engine: no Docker engine answers and dockerd is not installed;" \
         "install Docker or run as root so that this script can apt-get install docker.io" >&2
    exit 1
  fi
  echo "docker-engine: installing docker.io from Debian" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends docker.io >/dev/null
fi

if [ "$(id -u)" != 0 ]; then
  echo "docker-engine: dockerd is installed but not running; start it (as root)" >&2
  exit 1
fi

echo "docker-engine: starting dockerd (no bridge, no iptables; log in $DOCKERD_LOG)" >&2
# setsid: the engine outlives this script and the make that called it; it is one process
# whose pid is kept in /var/run/docker.pid by dockerd itself.
setsid dockerd --bridge=none --iptables=false --ip-forward=false --ip-masq=false \
  >"$DOCKERD_LOG" 2>&1 </dev/null &

for _ in $(seq "$WAIT_S"); do
  if docker info >/dev/null 2>&1; then
    echo "docker-engine: engine ready ($(docker version --format '{{.Server.Version}}'))" >&2
    exit 0
  fi
  sleep 1
done
echo "docker-engine: dockerd did not answer within ${WAIT_S}s; last log lines:" >&2
tail -n 20 "$DOCKERD_LOG" >&2
exit 1
