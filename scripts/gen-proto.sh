#!/usr/bin/env bash
# Generate the Python code for protos/ into OUT (default: service/). One command, one place.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root/service}
bin=${VENV_BIN:-$root/.venv/bin}
mkdir -p "$out/liveness/v1"
PATH="$bin:$PATH" "$bin/python" -m grpc_tools.protoc -I "$root/protos" \
  --python_out="$out" --grpc_python_out="$out" \
  --mypy_out="$out" --mypy_grpc_out="$out" \
  "$root/protos/liveness/v1/liveness.proto" >/dev/null
PATH="$bin:$PATH" "$bin/python" -m grpc_tools.protoc -I "$root/protos" \
  --python_out="$out" --mypy_out="$out" \
  "$root/protos/liveness/v1/error_reason.proto" >/dev/null
mkdir -p "$out/liveness/audit/v1"
PATH="$bin:$PATH" "$bin/python" -m grpc_tools.protoc -I "$root/protos" \
  --python_out="$out" --grpc_python_out="$out" \
  --mypy_out="$out" --mypy_grpc_out="$out" \
  "$root/protos/liveness/audit/v1/audit.proto" >/dev/null
touch "$out/liveness/__init__.py" "$out/liveness/v1/__init__.py" \
  "$out/liveness/audit/__init__.py" "$out/liveness/audit/v1/__init__.py"
