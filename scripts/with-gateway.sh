#!/usr/bin/env bash
# Run a command against a fresh gateway on the embedded vendor sandbox:
#   scripts/with-gateway.sh go test ./...
# Starts `liveness-gateway serve --sandbox` on a free loopback port, waits (bounded) for its
# ready file (--ready-file: written atomically once it is SERVING, naming the port it bound),
# exports LIVENESS_TARGET=127.0.0.1:PORT and LIVENESS_SANDBOX_URL (the embedded sandbox, for
# counting vendor calls), runs the command and always stops the gateway with SIGTERM. The
# command's exit status is the script's.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
gateway=${LIVENESS_GATEWAY_BIN:-$root/.venv/bin/liveness-gateway}
start_timeout_s=${LIVENESS_START_TIMEOUT_S:-60}
[ $# -gt 0 ] || { echo "usage: $0 COMMAND [ARGS...]" >&2; exit 2; }
[ -x "$gateway" ] || { echo "with-gateway: $gateway not found (run make setup)" >&2; exit 2; }

work=$(mktemp -d)
ready=$work/ready.json
log=$work/gateway.log
"$gateway" serve --sandbox --host 127.0.0.1 --port 0 --metrics-host 127.0.0.1 --metrics-port 0 \
  --ready-file "$ready" 2>"$log" >/dev/null &
pid=$!
stop() {
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    # Bounded wait for the graceful stop, then make sure it is gone.
    for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
  rm -rf "$work"
}
trap stop EXIT
trap 'exit 130' INT TERM

for _ in $(seq 1 $((start_timeout_s * 10))); do
  [ -e "$ready" ] && break
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.1
done
port=
[ -e "$ready" ] && port=$(sed -nE 's/.*"port": *([0-9]+).*/\1/p' "$ready")
if [ -z "$port" ]; then
  if kill -0 "$pid" 2>/dev/null; then
    echo "with-gateway: the gateway was not ready within ${start_timeout_s}s; its log:" >&2
  else
    echo "with-gateway: the gateway exited before it was ready; its log:" >&2
  fi
  cat "$log" >&2
  exit 1
fi
export LIVENESS_TARGET=127.0.0.1:$port
# The embedded sandbox's base URL, for tests that count vendor calls (GET .../_sandbox/stats):
# with --sandbox, the URL every vendor is called at.
LIVENESS_SANDBOX_URL=$(sed -nE 's/.*"linkface": *"([^"]+)".*/\1/p' "$ready")
export LIVENESS_SANDBOX_URL
echo "with-gateway: gateway on $LIVENESS_TARGET (pid $pid), sandbox at $LIVENESS_SANDBOX_URL" >&2
set +e
"$@"
status=$?
set -e
exit "$status"
