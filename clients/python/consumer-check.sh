#!/usr/bin/env bash
# Installs the Python client exactly as clients/python/README.md says and uses it from a project
# outside the repository: creates the application's virtualenv in a temporary directory, runs the
# README's install block from the repository root with that virtualenv active, writes the
# README's program to the temporary directory and runs it there against the live gateway in
# LIVENESS_TARGET (run it under scripts/with-gateway.sh). Passes when the program prints a score
# with a request id and an error with its reason and request id. The README blocks are the ones
# after the <!-- consumer:install|program --> markers.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
readme=$here/README.md
python=${PYTHON:-python3}
[ -n "${LIVENESS_TARGET:-}" ] || { echo "consumer-check: LIVENESS_TARGET is not set (run under scripts/with-gateway.sh)" >&2; exit 2; }

# block NAME: the fenced block after <!-- consumer:NAME --> in the README.
block() {
  awk -v marker="<!-- consumer:$1 -->" '
    $0 == marker { found = 1; next }
    found && /^```/ { if (inside) exit; inside = 1; next }
    inside { print }' "$readme"
}
for name in install program; do
  [ -n "$(block "$name")" ] || { echo "consumer-check: no consumer:$name block in $readme" >&2; exit 1; }
done

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
"$python" -m venv "$dir/venv"
echo "consumer-check: the README's install, from the repository root, in a fresh virtualenv:"
block install | sed 's/^/  /'
if ! (cd "$root" && source "$dir/venv/bin/activate" && bash -euo pipefail -c "$(block install)") \
  >"$dir/install.log" 2>&1; then
  cat "$dir/install.log" >&2
  echo "consumer-check: the README's install failed" >&2
  exit 1
fi
block program >"$dir/app.py"
# Outside the repository, so nothing but the installed package can be imported.
out=$(cd "$dir" && "$dir/venv/bin/python" app.py)
echo "$out" | sed 's/^/consumer-check: app: /'
echo "$out" | grep -Eq '^score 0\.42 LIVE request id [0-9a-f]{32}$' \
  || { echo "consumer-check: no score with a request id" >&2; exit 1; }
echo "$out" | grep -Eq '^error INVALID_ARGUMENT NO_FACE_DETECTED request id [0-9a-f]{32}$' \
  || { echo "consumer-check: no error with its reason and request id" >&2; exit 1; }
"$dir/venv/bin/python" -c 'import liveness_client, sys; sys.exit(not liveness_client.__file__.startswith(sys.argv[1]))' "$dir/venv" \
  || { echo "consumer-check: liveness_client was not imported from the application's virtualenv" >&2; exit 1; }
echo "consumer-check: ok"
