#!/usr/bin/env bash
# make test-image: run the built image the way Kubernetes will (read-only root, a tmpfs for
# /tmp, the image's own non-root user, all capabilities dropped) in sandbox mode, and check it
# from outside. Every container uses --network host and listens on 127.0.0.1 only.
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE=${IMAGE:?IMAGE=name:tag}
GRPC_HEALTH_PROBE=${GRPC_HEALTH_PROBE:?path to grpc-health-probe}
PY=${VENV_PYTHON:-.venv/bin/python}
BASE_IMAGE=${BASE_IMAGE:-$(sed -n 's/^ARG BASE_IMAGE=//p' Dockerfile)}
MAX_GROWTH_MB=150
DRAIN_S=10        # LIVENESS_GRACE_S given to the container
STOP_TIMEOUT_S=20 # docker stop's grace before SIGKILL: longer than the drain

scripts/docker-engine.sh

passed=0
failed=0
container=liveness-gateway-test-$$
ok() { passed=$((passed + 1)); echo "test-image: ok   $*"; }
fail() { failed=$((failed + 1)); echo "test-image: FAIL $*"; }
check() { # check DESCRIPTION COMMAND...
  local what=$1
  shift
  if "$@"; then ok "$what"; else fail "$what"; fi
}
cleanup() {
  if docker container inspect "$container" >/dev/null 2>&1; then
    if [ "$failed" -gt 0 ]; then docker logs "$container" 2>&1 | tail -n 30; fi
    docker rm -f "$container" >/dev/null 2>&1 || true
  fi
  rm -rf "$tmp"
}
tmp=$(mktemp -d)
trap cleanup EXIT

free_port() {
  "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
grpc_port=$(free_port)
metrics_port=$(free_port)
addr=127.0.0.1:$grpc_port

# --- static checks on the image --------------------------------------------------------
size=$(docker image inspect -f '{{.Size}}' "$IMAGE")
base_size=$(docker image inspect -f '{{.Size}}' "$BASE_IMAGE")
growth_mb=$(( (size - base_size) / 1000000 ))
echo "test-image: $IMAGE is $(( size / 1000000 )) MB, $growth_mb MB above $BASE_IMAGE"
check "image within $MAX_GROWTH_MB MB above its base ($growth_mb MB)" [ "$growth_mb" -le "$MAX_GROWTH_MB" ]

no_secret_in_metadata() {
  docker image inspect -f '{{range .Config.Env}}{{println .}}{{end}}{{range $k, $v := .Config.Labels}}{{$k}}={{println $v}}{{end}}' \
    "$IMAGE" >"$tmp/metadata"
  docker history --no-trunc --format '{{.CreatedBy}}' "$IMAGE" >>"$tmp/metadata"
  if grep -i -E '(secret|password|passwd|token|api_?key|credential|private)[a-z_]*=' "$tmp/metadata"; then
    return 1
  fi
  # ...and no certificate authority of the build machine: only Debian's ca-certificates.
  ! docker run --rm --network host --entrypoint sh "$IMAGE" -c \
    'ls /usr/local/share/ca-certificates/ 2>/dev/null | grep -q .'
}
check "no secret in the image's env, labels or history" no_secret_in_metadata

oci_labels() {
  local label value
  for label in version revision source; do
    value=$(docker image inspect -f "{{index .Config.Labels \"org.opencontainers.image.$label\"}}" "$IMAGE")
    [ -n "$value" ] && [ "$value" != "<no value>" ] || return 1
  done
}
check "OCI labels version, revision, source" oci_labels

user_is_numeric_non_root() {
  local user
  user=$(docker image inspect -f '{{.Config.User}}' "$IMAGE")
  [[ $user =~ ^[1-9][0-9]*(:[1-9][0-9]*)?$ ]]
}
check "image user is numeric and non-root" user_is_numeric_non_root

no_build_tools() {
  # Exit 0 only when none of them is there.
  docker run --rm --network host --entrypoint sh "$IMAGE" -c \
    'for t in pip pip3 gcc cc c++ make; do command -v $t && exit 1; done;
     ls -d /root/.cache/pip /nonexistent/.cache /opt/liveness-gateway/bin/pip* 2>/dev/null && exit 1;
     python3 -c "import pip" 2>/dev/null && exit 1; exit 0'
}
check "no pip, compilers or pip caches in the image" no_build_tools
check "the chart's preStop command (sleep) exists" \
  docker run --rm --network host --read-only --entrypoint sleep "$IMAGE" 0

refuses_without_credentials() {
  local rc=0
  docker run --rm --network host --read-only -e LIVENESS_HOST=127.0.0.1 \
    -e LIVENESS_PORT="$grpc_port" -e LIVENESS_METRICS_HOST=127.0.0.1 \
    -e LIVENESS_METRICS_PORT="$metrics_port" "$IMAGE" >"$tmp/refuse.log" 2>&1 || rc=$?
  [ "$rc" -eq 2 ] && grep -q "missing vendor credentials" "$tmp/refuse.log"
}
check "without credentials or sandbox it refuses to start (exit 2)" refuses_without_credentials

# --- the running container -------------------------------------------------------------
start_ns=$(date +%s%N)
docker run -d --name "$container" --network host \
  --read-only --tmpfs /tmp:rw,noexec,nosuid,size=16m \
  --cap-drop ALL --security-opt no-new-privileges \
  --stop-timeout "$STOP_TIMEOUT_S" \
  -e LIVENESS_SANDBOX=1 -e LIVENESS_HOST=127.0.0.1 -e LIVENESS_PORT="$grpc_port" \
  -e LIVENESS_METRICS_HOST=127.0.0.1 -e LIVENESS_METRICS_PORT="$metrics_port" \
  -e LIVENESS_GRACE_S="$DRAIN_S" \
  "$IMAGE" >/dev/null

serving=""
for _ in $(seq 300); do # 30 s at most
  if "$GRPC_HEALTH_PROBE" -addr "$addr" -connect-timeout 1s -rpc-timeout 1s >"$tmp/probe" 2>&1; then
    serving=$(( ($(date +%s%N) - start_ns) / 1000000 ))
    break
  fi
  if [ "$(docker inspect -f '{{.State.Running}}' "$container")" != true ]; then break; fi
  sleep 0.1
done
if [ -n "$serving" ]; then
  echo "test-image: first SERVING ${serving} ms after docker run"
  ok "grpc-health-probe: $(cat "$tmp/probe")"
else
  fail "grpc-health-probe never reported SERVING: $(cat "$tmp/probe")"
  echo "test-image: $passed passed, $failed failed"
  exit 1
fi

process_not_root() {
  local pid
  pid=$(docker inspect -f '{{.State.Pid}}' "$container")
  # Real, effective, saved and filesystem ids, as the host kernel sees them.
  awk '/^Uid:|^Gid:/ { for (i = 2; i <= 5; i++) if ($i == 0) exit 1 }' "/proc/$pid/status"
}
check "the process in the container is not uid/gid 0" process_not_root

root_is_read_only() {
  docker exec "$container" python3 -c 'open("/opt/liveness-gateway/x", "w")' 2>"$tmp/ro" && return 1
  grep -q "Read-only file system" "$tmp/ro"
}
check "the root filesystem is read-only" root_is_read_only

client() { # client DATA: one Detect through the Python client package (clients/python)
  "$PY" - "$addr" "$@" <<'PY'
import sys

from liveness_client import LivenessClient

addr, data = sys.argv[1], sys.argv[2].encode()
with LivenessClient(addr, timeout=20) as client:
    result = client.detect(data=data)
    print(f"{result.score} {result.verdict.name}")
PY
}
detect_returns_score() {
  client "SANDBOX:score=0.5" >"$tmp/detect" 2>&1 && [ "$(cat "$tmp/detect")" = "0.5 LIVE" ]
}
check "Detect through the Python client returns score 0.5" detect_returns_score

metrics_answer() {
  "$PY" - "http://127.0.0.1:$metrics_port/metrics" >"$tmp/metrics" 2>&1 <<'PY'
import sys
import urllib.request

with urllib.request.urlopen(sys.argv[1], timeout=5) as reply:
    assert reply.status == 200, reply.status
    print(reply.read().decode())
PY
  grep -q '^grpc_server_handled_total{.*grpc_method="Detect".*} 1.0' "$tmp/metrics"
}
check "/metrics answers and counts the Detect" metrics_answer

# docker stop while a 3 s call is in flight: the call completes, the container exits 0.
client "SANDBOX:delay_ms=3000;score=0.25" >"$tmp/inflight" 2>&1 &
inflight_pid=$!
sleep 1
stop_start=$(date +%s%N)
docker stop "$container" >/dev/null
stop_ms=$(( ($(date +%s%N) - stop_start) / 1000000 ))
inflight_rc=0
wait "$inflight_pid" || inflight_rc=$?
check "in-flight Detect finished during docker stop ($(cat "$tmp/inflight"))" \
  [ "$inflight_rc" -eq 0 -a "$(cat "$tmp/inflight")" = "0.25 LIVE" ]
exit_code=$(docker inspect -f '{{.State.ExitCode}}' "$container")
check "container exited 0 ($exit_code) after ${stop_ms} ms, within its ${DRAIN_S} s drain" \
  [ "$exit_code" -eq 0 -a "$stop_ms" -lt $((DRAIN_S * 1000)) ]
# It did wait for the call: SIGTERM came about 2 s before the call's end.
check "docker stop waited for the in-flight call (${stop_ms} ms)" [ "$stop_ms" -ge 1000 ]

echo "test-image: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
