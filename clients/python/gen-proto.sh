#!/usr/bin/env bash
# Generate the client's own copy of the liveness.v1 code from the repository's protos/.
#
#   ./gen-proto.sh           regenerate src/liveness_client/_proto/ in place
#   ./gen-proto.sh --check   fail (exit 1) when the checked-in code differs from protos/
#
# protoc writes "from liveness.v1 import liveness_pb2"; the import is rewritten to point inside
# this package so the client never depends on the gateway's own generated modules. The proto
# file name stays "liveness/v1/liveness.proto", so both copies can share one process.
# The shipped service config (protos/liveness/v1/service_config.json) is copied beside the code,
# as package data: the channel loads it, so the client retries exactly as the contract says.
# Tools (grpcio-tools, mypy-protobuf) come from VENV_BIN, by default the repository's .venv.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
bin=${VENV_BIN:-$root/.venv/bin}
protos=${PROTOS_DIR:-$root/protos}
dest=$here/src/liveness_client/_proto
pkg=liveness_client._proto.liveness.v1
audit_pkg=liveness_client._proto.liveness.audit.v1

generate() {
  local out=$1
  mkdir -p "$out/liveness/v1"
  PATH="$bin:$PATH" "$bin/python" -m grpc_tools.protoc -I "$protos" \
    --python_out="$out" --grpc_python_out="$out" \
    --mypy_out="$out" --mypy_grpc_out="$out" \
    "$protos/liveness/v1/liveness.proto" "$protos/liveness/v1/error_reason.proto" \
    > /dev/null 2> >(grep -v "^Writing mypy to" >&2 || true)
  local f
  for f in "$out"/liveness/v1/*.py "$out"/liveness/v1/*.pyi; do
    sed -i -E "s/^(from|import) liveness\.v1( |\.|$)/\1 $pkg\2/" "$f"
  done
  if grep -En '^(from|import) liveness\.' "$out"/liveness/v1/*.py "$out"/liveness/v1/*.pyi; then
    echo "gen-proto: an import of liveness.* was left unrewritten" >&2
    exit 1
  fi
  # The operators' query API (livenessctl audit): liveness.audit.v1, rewritten the same way.
  mkdir -p "$out/liveness/audit/v1"
  PATH="$bin:$PATH" "$bin/python" -m grpc_tools.protoc -I "$protos" \
    --python_out="$out" --grpc_python_out="$out" \
    --mypy_out="$out" --mypy_grpc_out="$out" \
    "$protos/liveness/audit/v1/audit.proto" \
    > /dev/null 2> >(grep -v "^Writing mypy to" >&2 || true)
  for f in "$out"/liveness/audit/v1/*.py "$out"/liveness/audit/v1/*.pyi; do
    sed -i -E "s/^(from|import) liveness\.audit\.v1( |\.|$)/\1 $audit_pkg\2/" "$f"
  done
  if grep -En '^(from|import) liveness\.' "$out"/liveness/audit/v1/*.py "$out"/liveness/audit/v1/*.pyi; then
    echo "gen-proto: an import of liveness.* was left unrewritten" >&2
    exit 1
  fi
  cp "$protos/liveness/v1/service_config.json" "$out/liveness/v1/service_config.json"
  printf '"""Generated from protos/ by clients/python/gen-proto.sh; do not edit."""\n' \
    | tee "$out/__init__.py" "$out/liveness/__init__.py" "$out/liveness/audit/__init__.py" \
      "$out/liveness/audit/v1/__init__.py" >"$out/liveness/v1/__init__.py"
}

if [[ ${1:-} == --check ]]; then
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  generate "$tmp"
  if ! diff -r -x __pycache__ "$tmp" "$dest"; then
    echo "proto-check: clients/python/src/liveness_client/_proto or its service_config.json is stale; run clients/python/gen-proto.sh" >&2
    exit 1
  fi
  echo "proto-check: client generated code is up to date"
else
  rm -rf "$dest"
  generate "$dest"
fi
